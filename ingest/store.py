"""Writing one batch's results (``Batch``) inside the caller's transaction: positions by
binary COPY, devices' last position (never backwards), dead letters, and what tracking
and the ETA stage produced (milestones, events, exceptions, device states, shipments'
ETA fields). The pipeline owns the transaction and acknowledges the batch to the broker
only once it committed, so a crash anywhere before loses nothing. The SQL is named in
``shiptrack.db.queries.positions`` and ``shiptrack.db.queries.tracking``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ingest.eta_stage import EtaOutcome
from ingest.tracking_model import MilestoneOp, Outcome, encode_state
from shiptrack.db.queries import positions as pq
from shiptrack.db.queries import tracking as q
from shiptrack.events import Event
from shiptrack.fix import JSON_FIELDS, LAST_POSITION_FIELDS, POSITION_FIELDS, Fix, Rejection
from shiptrack.shipments import detector_code

Cursor = psycopg.Cursor[Any]


@dataclass(slots=True)
class Batch:
    """Everything one batch writes, in one transaction."""

    fixes: list[Fix] = field(default_factory=list)  # every accepted fix (the history)
    live: list[Fix] = field(default_factory=list)  # those that moved live positions, ts order
    rejections: list[Rejection] = field(default_factory=list)  # the dead letters
    tracking: Outcome = field(default_factory=Outcome)
    eta: EtaOutcome = field(default_factory=EtaOutcome)
    source: str = "mqtt"  # dead_letters.source


@dataclass(slots=True)
class Written:
    inserted: int = 0  # positions newly stored
    duplicates: int = 0
    events: list[Event] = field(default_factory=list)  # newly stored, in order
    applied: set[tuple[str, str, datetime]] = field(default_factory=set)  # milestones taken
    months: set[datetime] = field(default_factory=set)  # positions partitions ensured


def month_start(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class _Rows:
    """COPY rows of these fields of fixes (jsonb ones wrapped)."""

    def __init__(self, fields: tuple[str, ...]) -> None:
        self.values = attrgetter(*fields)
        self.json = [i for i, n in enumerate(fields) if n in JSON_FIELDS]

    def __call__(self, fix: Fix) -> list[Any]:
        row = list(self.values(fix))
        for i in self.json:
            if row[i] is not None:
                row[i] = Jsonb(row[i])
        return row


_POSITION_ROW = _Rows(POSITION_FIELDS)
_DEVICE_ROW = _Rows(LAST_POSITION_FIELDS)


class BatchStore:
    """One connection; ``write`` runs inside the caller's transaction. Not thread-safe."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn
        self._months: set[datetime] = set()
        with conn.transaction():
            conn.execute(pq.STAGE_POSITIONS)
            conn.execute(pq.STAGE_DEVICES)

    def write(self, batch: Batch) -> Written:
        written = Written()
        with self.conn.cursor() as cur:
            if batch.fixes:
                written.months = {month_start(f.ts) for f in batch.fixes} - self._months
                written.inserted = self._positions(cur, batch.fixes, written.months)
                written.duplicates = len(batch.fixes) - written.inserted
                self._devices(cur, batch.fixes, batch.live)
            if batch.rejections:
                self._dead_letters(cur, batch.rejections, batch.source)
            written.events = self._tracking(cur, batch.tracking, written)
            written.events += self._eta(cur, batch.eta)
        return written

    def committed(self, written: Written) -> None:
        """After the commit: the partitions ``written`` ensured exist."""
        self._months |= written.months

    # positions -------------------------------------------------------------------------------

    def _positions(self, cur: Cursor, fixes: list[Fix], months: set[datetime]) -> int:
        if months:
            cur.execute(pq.ENSURE_PARTITIONS, (sorted(months),))
        with cur.copy(pq.COPY_POSITIONS) as cp:
            cp.set_types(pq.POSITION_TYPES)
            for f in fixes:
                cp.write_row(_POSITION_ROW(f))
        cur.execute(pq.INSERT_POSITIONS)
        return len(cur.fetchall())

    def _devices(self, cur: Cursor, fixes: list[Fix], live: list[Fix]) -> None:
        """Each device's newest live fix becomes its last position (never backwards, also
        against a concurrent ingest process); devices with only older fixes are touched."""
        newest: dict[str, Fix] = {}
        for f in live:
            newest[f.device_id] = f  # live is in ts order: the last one wins
        if newest:
            with cur.copy(pq.COPY_DEVICES) as cp:
                cp.set_types(pq.DEVICE_TYPES)
                for f in newest.values():
                    cp.write_row(_DEVICE_ROW(f))
            cur.execute(pq.UPSERT_DEVICES)
        others = sorted({f.device_id for f in fixes} - newest.keys())
        if others:
            cur.execute(pq.TOUCH_DEVICES, (others,))

    def _dead_letters(self, cur: Cursor, rejections: list[Rejection], source: str) -> None:
        with cur.copy(pq.COPY_DEAD_LETTERS) as cp:
            for r in rejections:
                cp.write_row((source, storable_text(r.topic), storable_text(r.reason),
                              storable_text(r.detail), r.payload, r.count))

    # tracking and the ETA stage ----------------------------------------------------------------

    def _tracking(self, cur: Cursor, outcome: Outcome, written: Written) -> list[Event]:
        """Milestones (guarded), their events and the others, exceptions, states; returns
        the events newly stored."""
        events: list[Event] = []
        for item in outcome.items:
            if isinstance(item, MilestoneOp):
                cur.execute(q.RECORD_MILESTONE, q.milestone_params(
                    item.shipment_id, item.kind, item.ts, item.source, item.data))
                if cur.fetchone() is not None:
                    written.applied.add((item.shipment_id, item.kind, item.ts))
                    events.append(item.event)
            else:
                events.append(item)
        stored = _insert_events(cur, events)
        for op in outcome.exceptions:
            cur.execute(q.OPEN_EXCEPTION if op.open else q.CLOSE_EXCEPTION, {
                "shipment_id": op.shipment_id, "kind": op.kind, "since": op.since,
                "reason": op.reason, "data": Jsonb(op.data),
                "code": op.code or detector_code(op.kind)})
        if outcome.states:
            cur.executemany(q.UPSERT_STATE, [
                (d, encode_state(s).decode(), s.live, s.offline)
                for d, s in sorted(outcome.states.items())])
        return stored

    def _eta(self, cur: Cursor, outcome: EtaOutcome) -> list[Event]:
        """The ETA stage's shipment fields in one statement; at risk is an open exception
        with code ``delayed``; its events like tracking's: returns those newly stored."""
        if outcome.rows:
            cur.execute(q.UPDATE_ETAS, outcome.row_arrays())
        for e in outcome.events:
            if e.shipment_id and e.type in ("shipment.at_risk", "shipment.at_risk_cleared"):
                cur.execute(q.OPEN_EXCEPTION if e.type == "shipment.at_risk"
                            else q.CLOSE_EXCEPTION, {
                                "shipment_id": e.shipment_id, "kind": "eta.at_risk",
                                "since": e.ts, "data": Jsonb(e.data), "code": "delayed",
                                "reason": f"may arrive after the promised "
                                          f"{e.data.get('promised_by')}"})
        return _insert_events(cur, outcome.events)


def _insert_events(cur: Cursor, events: list[Event]) -> list[Event]:
    """Insert in order, dropping duplicate ids; returns those newly stored."""
    if not events:
        return []
    cur.execute(q.INSERT_EVENTS, q.event_params(events))
    stored = {str(r[0]) for r in cur.fetchall()}
    return [e for e in events if e.id in stored]


def storable_text(value: str) -> str:
    """Text PostgreSQL accepts whatever the input held: NUL escaped, lone surrogates
    replaced (a dead letter is the one place bad input must always fit)."""
    text = value.replace("\x00", "\\x00")
    return text.encode("utf-8", "replace").decode("utf-8")
