"""The database side of tracking, on ingest's connection: loading geofences, active
shipments and device states; writing an ``Outcome`` inside the batch's transaction;
noticing changes made through the API without a restart.

Changes are noticed by polling ``tracking_versions`` (bumped by a trigger on geofences
and by the API on shipment writes) every ``SHIPTRACK_TRACKING_RELOAD_S``: one tiny
query, never per fix. Parsed fences and route corridors are cached across reloads.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import psycopg
from psycopg.types.json import Jsonb
from shapely.geometry.base import BaseGeometry

from ingest.eta_stage import EtaOutcome
from ingest.fence_index import Fence, FenceIndex, shape_frame
from ingest.tracking import (
    Area,
    DeviceState,
    MilestoneOp,
    Outcome,
    ShipmentTrack,
    Tracker,
    decode_state,
    encode_state,
)
from shiptrack.db import tracking_sql as q
from shiptrack.events import Event
from shiptrack.geofences import GeofenceError, corridor_shape, from_wkb, parse_feature
from shiptrack.shipments import ShipmentError, detector_code, parse_limits

log = logging.getLogger("shiptrack.ingest")
Conn = psycopg.Connection[tuple[Any, ...]]


@dataclass(slots=True)
class Written:
    events: list[Event] = field(default_factory=list)  # newly stored, in order
    applied: set[tuple[str, str, datetime]] = field(default_factory=set)


@dataclass(slots=True)
class Caches:
    fences: dict[tuple[str, datetime], Fence] = field(default_factory=dict)
    corridors: dict[tuple[str, str, float], Any] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    checked: float = 0.0


def area_from(raw: Any, key: str) -> Area | None:
    if not isinstance(raw, dict):
        return None
    if raw.get("geofence_id"):
        return Area(key=key, fence_id=str(raw["geofence_id"]))
    try:
        return Area(key=key, lat=float(raw["lat"]), lon=float(raw["lon"]),
                    radius_m=float(raw["radius_m"]))
    except (KeyError, TypeError, ValueError):
        return None


class TrackingStore:
    """Implements ``ingest.tracking.StateSource`` on a (non-autocommit) connection; every
    read commits, so that ``write`` can run in the caller's own transaction."""

    def __init__(self, conn: Conn, tracker: Tracker, caches: Caches,
                 corridor_m: float, excursion_s: float, reload_s: float) -> None:
        self.conn = conn
        self.tracker = tracker
        self.caches = caches
        self.corridor_m = corridor_m
        self.excursion_s = excursion_s
        self.reload_s = reload_s
        self._route_wkb: dict[str, BaseGeometry] = {}  # prefetched by load_shipments

    # reads ---------------------------------------------------------------------------------

    def _rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        try:
            return self.conn.execute(sql, params).fetchall()
        finally:
            self.conn.commit()

    def load_states(self, device_ids: list[str]) -> dict[str, DeviceState]:
        states = {}
        for device_id, raw in self._rows(q.LOAD_STATES, (device_ids,)):
            try:
                states[str(device_id)] = decode_state(raw)
            except (msgspec.ValidationError, msgspec.DecodeError):
                log.warning("tracking state of %s is unreadable; starting afresh", device_id)
        return states

    def known_references(self, refs: list[str]) -> set[str]:
        return {str(r[0]) for r in self._rows(q.KNOWN_REFERENCES, (refs,))}

    def offline_candidates(self, cutoff: datetime, limit: int = 1000) -> list[tuple[str,
                                                                                     datetime]]:
        return [(str(d), ts) for d, ts in self._rows(q.OFFLINE_CANDIDATES, (cutoff, limit))]

    # reloads -------------------------------------------------------------------------------

    def refresh(self, force: bool = False) -> None:
        """Reload what changed since the last look (at most every ``reload_s``)."""
        now = time.monotonic()
        if not force and not self.tracker.stale and now - self.caches.checked < self.reload_s:
            return
        self.caches.checked = now
        versions = {str(n): int(v) for n, v in self._rows(q.VERSIONS)}
        known = self.caches.versions
        fences = force or versions.get("geofences") != known.get("geofences")
        shipments = fences or self.tracker.stale or versions.get("shipments") != known.get(
            "shipments")
        if fences:
            self.tracker.set_fences(self.load_fences())
        if shipments:
            self.tracker.set_shipments(self.load_shipments())
        self.caches.versions = versions

    def load_fences(self) -> FenceIndex:
        fences, cache = [], {}
        rows = self._rows(q.LOAD_FENCES)
        built = self._built_corridors([str(r[0]) for r in rows
                                       if (str(r[0]), r[4]) not in self.caches.fences])
        for fid, name, geometry, properties, updated in rows:
            key = (str(fid), updated)
            fence = self.caches.fences.get(key)
            if fence is None:
                try:
                    spec = parse_feature({"type": "Feature", "geometry": geometry,
                                          "properties": properties}, built.get(str(fid)))
                except GeofenceError as exc:
                    log.warning("geofence %s is not usable (%s); skipped", fid, exc)
                    continue
                fence = Fence(str(fid), str(name), spec)
            cache[key] = fence
            fences.append(fence)
        self.caches.fences = cache
        log.info("geofences loaded: %d", len(fences))
        return FenceIndex(fences)

    def load_shipments(self) -> list[ShipmentTrack]:
        out, corridors = [], {}
        rows = self._rows(q.LOAD_ACTIVE_SHIPMENTS)
        cached = {key[0] for key in self.caches.corridors}
        self._route_wkb = self._built_routes([str(r[0]) for r in rows
                                              if isinstance(r[6], dict) and str(r[0]) not in
                                              cached])
        for row in rows:
            (sid, ref, device, status, origin, destination, route, width, limits, last,
             promised_by, at_risk, announced, eta_first, created) = row
            o, d = area_from(origin, f"{sid}:origin"), area_from(destination,
                                                                 f"{sid}:destination")
            if (o is None and origin is not None) or d is None:
                log.warning("shipment %s has no usable origin/destination; skipped", sid)
                continue
            try:
                parsed = parse_limits(limits or {}, self.excursion_s)
            except ShipmentError as exc:
                log.warning("shipment %s: sensor limits ignored (%s)", sid, exc)
                parsed = {}
            ship = ShipmentTrack(id=str(sid), reference=str(ref), device_id=str(device),
                                 status=str(status), origin=o, destination=d, limits=parsed,
                                 last_ts=last, promised_by=promised_by,
                                 route=route if isinstance(route, dict) else None,
                                 at_risk=bool(at_risk), eta_announced=announced,
                                 eta_first=eta_first, created_at=created)
            if isinstance(route, dict):
                key = (str(sid), msgspec.json.encode(route).decode(),
                       float(width or self.corridor_m))
                ship.corridor = self.caches.corridors.get(key) or self._corridor(sid, route,
                                                                                 key[2])
                corridors[key] = ship.corridor
            out.append(ship)
        self.caches.corridors = corridors
        return out

    def _built_corridors(self, fence_ids: list[str]) -> dict[str, BaseGeometry]:
        """The corridors the API built when these fences were written (migration 0006)."""
        if not fence_ids:
            return {}
        found = {}
        for fid, wkb in self._rows(q.LOAD_FENCE_WKB, (fence_ids,)):
            geom = from_wkb(wkb)
            if geom is not None:
                found[str(fid)] = geom
        return found

    def _built_routes(self, shipment_ids: list[str]) -> dict[str, BaseGeometry]:
        """The route corridors the API built for these shipments (one query)."""
        if not shipment_ids:
            return {}
        found = {}
        for sid, wkb in self._rows(q.LOAD_ROUTE_WKB, (shipment_ids,)):
            geom = from_wkb(wkb)
            if geom is not None:
                found[str(sid)] = geom
        return found

    def _corridor(self, sid: str, route: dict[str, Any], width: float) -> Any:
        """A route's corridor frame: the polygon the API built, else built here (rows
        from before migration 0006), within the same cost budget."""
        built = self._route_wkb.get(str(sid))
        if built is None:
            built = self._built_routes([str(sid)]).get(str(sid))
        try:
            shape = corridor_shape(route.get("coordinates"), width, "route_corridor_m", built)
            return shape_frame(shape.geometry)
        except GeofenceError as exc:
            log.warning("shipment %s: route corridor unusable (%s)", sid, exc)
            return None

    # writes (inside the caller's transaction) ------------------------------------------------

    def write(self, outcome: Outcome) -> Written:
        written = Written()
        if outcome.empty():
            return written
        events: list[Event] = []
        with self.conn.cursor() as cur:
            for item in outcome.items:
                if isinstance(item, MilestoneOp):
                    if self._milestone(cur, item):
                        written.applied.add((item.shipment_id, item.kind, item.ts))
                        events.append(item.event)
                else:
                    events.append(item)
            written.events = _insert_events(cur, events)
            for op in outcome.exceptions:
                params = {"shipment_id": op.shipment_id, "kind": op.kind, "since": op.since,
                          "reason": op.reason, "data": Jsonb(op.data),
                          "code": op.code or detector_code(op.kind)}
                cur.execute(q.OPEN_EXCEPTION if op.open else q.CLOSE_EXCEPTION, params)
            if outcome.states:
                cur.executemany(q.UPSERT_STATE, [
                    (d, encode_state(s).decode(), s.live, s.offline)
                    for d, s in sorted(outcome.states.items())])
        return written

    def write_eta(self, outcome: EtaOutcome) -> list[Event]:
        """The ETA stage's outcome: its shipment fields in one statement, its events like
        tracking's (deterministic ids, duplicates dropped); returns the events stored."""
        if outcome.empty():
            return []
        with self.conn.cursor() as cur:
            if outcome.rows:
                cur.execute(q.UPDATE_ETAS, outcome.row_arrays())
            for e in outcome.events:  # at risk: an open exception with code ``delayed``
                if e.shipment_id and e.type in ("shipment.at_risk", "shipment.at_risk_cleared"):
                    cur.execute(q.OPEN_EXCEPTION if e.type == "shipment.at_risk"
                                else q.CLOSE_EXCEPTION, {
                        "shipment_id": e.shipment_id, "kind": "eta.at_risk", "since": e.ts,
                        "reason": f"may arrive after the promised {e.data.get('promised_by')}",
                        "data": Jsonb(e.data), "code": "delayed"})
            return _insert_events(cur, outcome.events)

    def _milestone(self, cur: psycopg.Cursor[tuple[Any, ...]], op: MilestoneOp) -> bool:
        cur.execute(q.RECORD_MILESTONE, q.milestone_params(op.shipment_id, op.kind, op.ts,
                                                           op.source, op.data))
        return cur.fetchone() is not None


def _insert_events(cur: psycopg.Cursor[tuple[Any, ...]], events: list[Event]) -> list[Event]:
    """Insert in order, dropping duplicate ids; returns those newly stored."""
    if not events:
        return []
    cur.execute(q.INSERT_EVENTS, _event_arrays(events))
    stored = {str(r[0]) for r in cur.fetchall()}
    return [e for e in events if e.id in stored]


def _event_arrays(events: list[Event]) -> tuple[list[Any], ...]:
    return (
        [e.id for e in events], [e.ts for e in events], [e.type for e in events],
        [e.device_id for e in events], [e.shipment_id for e in events],
        [e.geofence_id for e in events],
        [Jsonb(e.data) for e in events],
    )
