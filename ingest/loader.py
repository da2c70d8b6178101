"""What ingest reads from the database, before a batch runs: the devices' last positions
(the outlier filter's seed), the committed tracking states, whether scan references
exist, the devices gone silent, and the fences and active shipments (``reload``).
Nothing here writes (``ingest.store`` does) and nothing here holds tracking's state: it
returns what it read, and the pipeline hands it to the tracker.

Changes are noticed by polling ``tracking_versions`` (bumped by a trigger on geofences
and by the API on shipment writes) every ``SHIPTRACK_TRACKING_RELOAD_S``: one tiny
query, never per fix. Parsed fences and route corridors are cached across reloads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
import psycopg
from shapely.geometry.base import BaseGeometry

from ingest.fence_index import Fence, FenceIndex, shape_frame
from ingest.outliers import LastFix
from ingest.tracking_model import Area, DeviceState, ShipmentTrack, decode_state
from shiptrack.db.queries import positions as pq
from shiptrack.db.queries import tracking as q
from shiptrack.geofences import GeofenceError, corridor_shape, from_wkb, parse_feature
from shiptrack.shipments import ShipmentError, parse_limits

log = logging.getLogger("shiptrack.ingest")
Conn = psycopg.Connection[Any]


@dataclass(slots=True)
class Caches:
    fences: dict[tuple[str, datetime], Fence] = field(default_factory=dict)
    corridors: dict[tuple[str, str, float], Any] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    checked: float = 0.0


@dataclass(slots=True)
class Reload:
    """What changed since the last look: None where nothing did."""

    fences: FenceIndex | None = None
    shipments: list[ShipmentTrack] | None = None


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


class Loader:
    """Reads on ingest's (autocommit) connection, outside the batch's transaction."""

    def __init__(self, conn: Conn, caches: Caches, corridor_m: float, excursion_s: float,
                 reload_s: float) -> None:
        self.conn = conn
        self.caches = caches
        self.corridor_m = corridor_m
        self.excursion_s = excursion_s
        self.reload_s = reload_s
        self._route_wkb: dict[str, BaseGeometry] = {}  # prefetched by load_shipments

    # reads ---------------------------------------------------------------------------------

    def _rows(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def last_fixes(self, device_ids: Iterable[str]) -> dict[str, LastFix]:
        rows = self._rows(pq.LOAD_LAST, (list(device_ids),))
        return {str(r[0]): LastFix(r[1], r[2], r[3], r[4]) for r in rows}

    def states(self, device_ids: list[str]) -> dict[str, DeviceState]:
        if not device_ids:
            return {}
        states = {}
        for device_id, raw in self._rows(q.LOAD_STATES, (device_ids,)):
            try:
                states[str(device_id)] = decode_state(raw)
            except (msgspec.ValidationError, msgspec.DecodeError):
                log.warning("tracking state of %s is unreadable; starting afresh", device_id)
        return states

    def known_references(self, refs: list[str]) -> set[str]:
        if not refs:
            return set()
        return {str(r[0]) for r in self._rows(q.KNOWN_REFERENCES, (refs,))}

    def offline_candidates(self, cutoff: datetime, limit: int = 1000) -> list[tuple[str,
                                                                                     datetime]]:
        return [(str(d), ts) for d, ts in self._rows(q.OFFLINE_CANDIDATES, (cutoff, limit))]

    # reloads -------------------------------------------------------------------------------

    def reload(self, force: bool = False, stale: bool = False) -> Reload:
        """What changed since the last look (looked at most every ``reload_s``): ``force``
        reloads everything, ``stale`` the shipments (the tracker's copy is out of date);
        new fences also reload the shipments (their delivery zones)."""
        now = time.monotonic()
        if not force and not stale and now - self.caches.checked < self.reload_s:
            return Reload()
        self.caches.checked = now
        versions = {str(n): int(v) for n, v in self._rows(q.VERSIONS)}
        known = self.caches.versions
        fences = force or versions.get("geofences") != known.get("geofences")
        shipments = fences or stale or versions.get("shipments") != known.get("shipments")
        out = Reload(self.load_fences() if fences else None,
                     self.load_shipments() if shipments else None)
        self.caches.versions = versions
        return out

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
