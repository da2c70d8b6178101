"""Ground truth: what really happened in a simulated run, for tests and ETA evaluation.

The fleet appends records to a ``TruthLog`` as they happen (simulated time); the CLI
drains it into files:

- ``--truth FILE``: JSON lines, one record each, ``{"type": ..., "device_id": ..., ...}``
  with times as RFC 3339 strings. Types: ``trip`` (departed, arrived, route, rests,
  traffic jams), ``trip_planned``, ``excursion``, ``shock`` and the faults ``offline``,
  ``duplicate``, ``malformed``, ``reboot``, ``clock_skew``, ``outlier``.
- ``--trips FILE``: one completed trip per line in the SPEC's ETA-evaluation input form,
  ``{"trip_id", "points": [{"ts", "lat", "lon"}], "route"}`` (plus ``device_id``, additive:
  eta-eval carries a truck's driving hours from trip to trip): departure, every fix the
  tracker took on the way (true time, reported position), and the arrival.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

Record = dict[str, Any]
FAULT_TYPES = frozenset({"offline", "duplicate", "malformed", "reboot", "clock_skew", "outlier"})


def iso(t: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds."""
    moment = datetime.fromtimestamp(t, UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}Z"


class TruthLog:
    """Records in the order they happened; ``drain()`` hands them over and forgets them."""

    def __init__(self) -> None:
        self.records: list[Record] = []

    def add(self, record_type: str, device_id: str, t: float, /, **fields: Any) -> Record:
        record: Record = {"type": record_type, "device_id": device_id, "ts": iso(t), **fields}
        self.records.append(record)
        return record

    def drain(self) -> list[Record]:
        new, self.records = self.records, []
        return new

    def of_type(self, *kinds: str) -> list[Record]:
        return [r for r in self.records if r["type"] in kinds]


def eta_trip(record: Record) -> Record | None:
    """A ``trip`` record in the ETA-evaluation form; None for a trip seen only in part."""
    if record["type"] != "trip" or record.get("partial"):
        return None
    return {"trip_id": record["trip_id"], "points": record["points"], "route": record["route"],
            "device_id": record["device_id"]}


class TruthFiles:
    """Writes drained records to the ``--truth`` and ``--trips`` files (either optional)."""

    def __init__(self, truth: Path | None, trips: Path | None) -> None:
        self._truth: TextIO | None = truth.open("w", encoding="utf-8") if truth else None
        self._trips: TextIO | None = trips.open("w", encoding="utf-8") if trips else None

    def write(self, records: Iterable[Record]) -> None:
        for record in records:
            if self._truth is not None:
                slim = {k: v for k, v in record.items() if k != "points"}
                self._truth.write(json.dumps(slim, separators=(",", ":")) + "\n")
            trip = eta_trip(record) if self._trips is not None else None
            if trip is not None and self._trips is not None:
                self._trips.write(json.dumps(trip, separators=(",", ":")) + "\n")

    def close(self) -> None:
        for f in (self._truth, self._trips):
            if f is not None:
                f.close()

