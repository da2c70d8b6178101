"""Converters to eta-eval trips (``shiptrack eta-convert``): simulator output and GPX.

- ``sim``: what ``shiptrack simulate`` writes. ``--trips FILE`` lines are trips already
  (``trip_id``, ``points``, ``route``, ``device_id``); ``--truth FILE`` lines are
  records, whose ``trip`` records say which device drove each trip (they carry no
  fixes): given both, a trip without a ``device_id`` (files from older simulators) gets
  it from there. A ``trip`` record that does carry ``points`` (a truth log dumped in
  full) is a trip by itself. Trips seen only in part are skipped. Out: in departure
  order, each trip once.
- ``gpx``: every track of a GPX 1.0/1.1 file is a trip: its timed points in time order
  (the last one the arrival), named ``<file stem>`` or ``<file stem>-<n>`` when the file
  has several tracks. A ``<rte>`` in the same file is the planned route of its tracks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

from shiptrack.errors import InputError
from shiptrack.eta.route import Route, RouteError
from shiptrack.eta.trips import Trip, TripError, parse_trip


class ConvertError(InputError):
    """Input a converter cannot use: the message says why."""


def from_sim(lines: Iterable[str]) -> Iterator[Trip]:
    """Trips from the simulator's ``--trips`` and/or ``--truth`` lines (any mix)."""
    devices: dict[str, str] = {}
    trips: list[Trip] = []
    records = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise ConvertError(f"line {number}: not JSON") from exc
        if not isinstance(obj, dict):
            raise ConvertError(f"line {number}: not an object")
        kind = obj.get("type")
        if kind is not None and kind != "trip":
            continue
        records += 1
        if kind == "trip" and isinstance(obj.get("device_id"), str):
            devices[str(obj.get("trip_id"))] = obj["device_id"]
        if obj.get("partial") or "points" not in obj:
            continue
        try:
            trips.append(parse_trip(obj))
        except TripError as exc:
            raise ConvertError(f"line {number}: {exc}") from exc
    if records and not trips:
        raise ConvertError("no trip carries its fixes: pass the simulator's --trips file "
                           "(the --truth log only says which device drove which trip)")
    seen: set[str] = set()
    for trip in sorted(trips, key=lambda t: (t.start, t.trip_id)):
        if trip.trip_id in seen:
            continue
        seen.add(trip.trip_id)
        device = trip.device_id or devices.get(trip.trip_id)
        yield Trip(trip.trip_id, trip.ts, trip.lats, trip.lons, trip.route, device)


def from_gpx(path: Path) -> list[Trip]:
    """One trip per track of a GPX file (module docstring)."""
    import gpxpy
    import gpxpy.gpx

    try:
        with path.open(encoding="utf-8") as f:
            gpx = gpxpy.parse(f)
    except (OSError, gpxpy.gpx.GPXException, ValueError) as exc:
        raise ConvertError(f"{path}: {exc}") from exc
    route = None
    points = [(p.latitude, p.longitude) for r in gpx.routes for p in r.points]
    if points:
        try:
            route = Route(points)
        except RouteError:
            route = None
    tracks = [t for t in gpx.tracks if any(s.points for s in t.segments)]
    out = []
    for n, track in enumerate(tracks, start=1):
        trip_id = path.stem if len(tracks) == 1 else f"{path.stem}-{n}"
        timed = [{"ts": _epoch(p.time), "lat": p.latitude, "lon": p.longitude}
                 for s in track.segments for p in s.points if p.time is not None]
        try:
            trip = parse_trip({"trip_id": trip_id, "points": timed})
        except TripError as exc:
            raise ConvertError(f"{path}: track {n}: {exc}") from exc
        out.append(Trip(trip.trip_id, trip.ts, trip.lats, trip.lons, route))
    if not out:
        raise ConvertError(f"{path}: no track with timed points")
    return out


def _epoch(moment: Any) -> float:
    """GPX times are UTC; gpxpy leaves them naive when the file has no offset."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return float(moment.timestamp())


def dumps(trip: Trip) -> str:
    return json.dumps(trip.to_json(), separators=(",", ":"))
