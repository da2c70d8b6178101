"""Recorded trips, the input of ``shiptrack eta-eval`` (SPEC "ETA evaluation").

One JSON object per line::

    {"trip_id": "t1", "points": [{"ts": 1700000000, "lat": 30.61, "lon": 104.07}, ...],
     "route": {"type": "LineString", "coordinates": [[lon, lat], ...]}}

``ts`` is epoch seconds (numbers of 10^11 and more are read as milliseconds, as ingest
does) or RFC 3339. The last point is the arrival: its time the actual arrival, its place
the destination. ``route`` is optional. Additive: an optional ``device_id``; trips of the
same device are then replayed as one device, so its driving hours carry over from one
trip to the next, as they do in ingest.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shiptrack.errors import InputError
from shiptrack.eta.route import Route, RouteError

MS_FROM = 1e11


class TripError(InputError):
    """A line that is not a usable trip: the message says why."""


@dataclass(frozen=True, slots=True)
class Trip:
    trip_id: str
    ts: list[float]
    lats: list[float]
    lons: list[float]
    route: Route | None = None
    device_id: str | None = None

    @property
    def start(self) -> float:
        return self.ts[0]

    @property
    def end(self) -> float:
        return self.ts[-1]

    @property
    def destination(self) -> tuple[float, float]:
        return self.lats[-1], self.lons[-1]

    def to_json(self) -> dict[str, Any]:
        """The SPEC form (times as epoch seconds), with ``device_id`` when known."""
        out: dict[str, Any] = {"trip_id": self.trip_id}
        if self.device_id is not None:
            out["device_id"] = self.device_id
        out["points"] = [{"ts": round(t, 3), "lat": lat, "lon": lon}
                         for t, lat, lon in zip(self.ts, self.lats, self.lons, strict=True)]
        if self.route is not None:
            out["route"] = {"type": "LineString", "coordinates": [
                [float(lon), float(lat)] for lat, lon in zip(self.route.lats, self.route.lons,
                                                             strict=True)]}
        return out


def parse_ts(value: Any) -> float:
    """Epoch seconds from a number (seconds, or milliseconds from 10^11) or RFC 3339."""
    if isinstance(value, bool):
        raise TripError("ts must be a number or an RFC 3339 string")
    if isinstance(value, int | float):
        t = float(value)
        if not math.isfinite(t):
            raise TripError("ts must be finite")
        return t / 1000.0 if abs(t) >= MS_FROM else t
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError as exc:
            raise TripError(f"ts {value[:40]!r} is not RFC 3339") from exc
        if moment.tzinfo is None:
            raise TripError(f"ts {value[:40]!r} has no offset")
        return moment.timestamp()
    raise TripError("ts must be a number or an RFC 3339 string")


def _coordinate(point: dict[str, Any], key: str, limit: float) -> float:
    value = point.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or abs(value) > limit:
        raise TripError(f"point {key} must be a number within +-{limit:g}")
    return float(value)


def parse_trip(obj: Any) -> Trip:
    """A trip from one decoded line. Points are put in time order; of points with the
    same time the first is kept."""
    if not isinstance(obj, dict):
        raise TripError("a trip must be a JSON object")
    trip_id, points = obj.get("trip_id"), obj.get("points")
    if not isinstance(trip_id, str | int) or isinstance(trip_id, bool) or trip_id == "":
        raise TripError("trip_id must be a non-empty string")
    if not isinstance(points, list):
        raise TripError("points must be a list")
    rows = []
    for i, point in enumerate(points):
        if not isinstance(point, dict):
            raise TripError("each point must be an object")
        rows.append((parse_ts(point.get("ts")), i, _coordinate(point, "lat", 90.0),
                     _coordinate(point, "lon", 180.0)))
    rows.sort()
    rows = [r for j, r in enumerate(rows) if j == 0 or r[0] != rows[j - 1][0]]
    if len(rows) < 2 or rows[-1][0] <= rows[0][0]:
        raise TripError("a trip needs at least two points at different times")
    route = None
    if obj.get("route") is not None:
        try:
            route = Route.from_geojson(obj["route"])
        except RouteError as exc:
            raise TripError(str(exc)) from exc
    device = obj.get("device_id")
    return Trip(str(trip_id), [r[0] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
                route, device if isinstance(device, str) and device else None)


def read_trips(lines: Iterable[str]) -> Iterator[Trip | TripError]:
    """Each non-blank line as a trip, or the error that made it unusable (with its line
    number)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield parse_trip(json.loads(line))
        except (TripError, ValueError) as exc:
            yield TripError(f"line {number}: {exc}")
