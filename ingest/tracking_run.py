"""One run of tracking over a batch: pure over its ``TrackingView`` (read only, loaded
before it runs): copies of the device states it touches, the per-fix state machines in
order, and what they produced (``ingest.tracking_model.Outcome``).

Per device, in ``ts`` order:

1. online: the first fix after ``device.offline`` sends ``device.online``;
2. areas: every fence the fix is in or near (``FenceIndex``), every area the device is
   in or about to leave, and its shipments' origin and destination, through
   ``step_area`` (debounced); fences give ``geofence.enter/exit/dwell``;
3. shipments (not delivered): milestones, then sensor excursions and route deviation
   while under way;
4. long stop while a shipment is under way.

Events of one device never go back in time: an event is dated no earlier than the
device's previous one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from prometheus_client import Counter

from ingest.fence_index import classify_shapes
from ingest.tracking_model import (
    MAX_MARGIN_M,
    Area,
    DeviceState,
    ExceptionOp,
    MilestoneOp,
    Outcome,
    ShipmentState,
    ShipmentTrack,
    TrackingConfig,
    TrackingView,
    encode_state,
    iso,
    state_decoder,
)
from ingest.tracking_rules import (
    EDGE,
    IN,
    OUT,
    AreaState,
    Change,
    Spell,
    step_area,
    step_limit,
    step_spell,
    step_stop,
)
from shiptrack import events as ev
from shiptrack.eta.geo import haversine_m
from shiptrack.events import Event
from shiptrack.fix import Fix, Rejection
from shiptrack.scans import Scan, scan_action, unknown_reference
from shiptrack.shipments import (
    CLEARED_WHEN_FINAL,
    DETECTOR_CODES,
    DEVICE,
    FINAL,
    HUB,
    IN_TRANSIT,
    RANK,
    SCAN,
    Limit,
    can_move,
    detector_code,
    milestone_event,
)

SCANS = Counter("shiptrack_tracking_scans", "Scans handled, by result", ["result"])


class Run:
    """The work of one batch: copies of the states it touches, and what it produced."""

    def __init__(self, view: TrackingView, config: TrackingConfig, now: datetime) -> None:
        self.view = view
        self.cfg = config
        self.now = now
        self.out = Outcome()
        self.work: dict[str, DeviceState] = {}
        self.before: dict[str, bytes] = {}
        self.status: dict[str, str] = {}  # shipment id -> status during this batch
        self.last_ms: dict[str, datetime | None] = {}
        self.route_cls: dict[tuple[int, str], tuple[int, float]] = {}
        self.hubs: set[tuple[str, datetime]] = set()

    def state(self, device_id: str) -> DeviceState:
        st = self.work.get(device_id)
        if st is None:
            base = self.view.states.get(device_id) or DeviceState()
            raw = encode_state(base)
            self.before[device_id] = raw
            st = self.work[device_id] = state_decoder.decode(raw)
        return st

    def outcome(self) -> Outcome:
        for device_id, st in self.work.items():
            if encode_state(st) != self.before[device_id]:
                self.out.states[device_id] = st
        return self.out

    # shipments during the batch ---------------------------------------------------------

    def ship_status(self, ship: ShipmentTrack) -> str:
        return self.status.get(ship.id, ship.status)

    def active(self, device_id: str) -> list[ShipmentTrack]:
        return [s for s in self.view.by_device.get(device_id, ())
                if self.ship_status(s) not in FINAL]

    # emitting ----------------------------------------------------------------------------

    def emit(self, st: DeviceState, type_: str, ts: datetime, device_id: str, *,
             shipment_id: str | None = None, geofence_id: str | None = None,
             data: dict[str, Any] | None = None, discriminator: str = "") -> Event:
        if st.last_event is not None and ts < st.last_event:
            ts = st.last_event
        st.last_event = ts
        code = DETECTOR_CODES.get(type_)
        if code is not None:  # an own-fleet detection: its exception code (SPEC)
            data = {**(data or {}), "code": code}
        event = ev.make_event(type_, ts, device_id=device_id, shipment_id=shipment_id,
                              geofence_id=geofence_id, data=data,
                              discriminator=discriminator)
        self.out.items.append(event)
        return event

    def per_shipment(self, st: DeviceState, type_: str, ts: datetime, device_id: str,
                     ships: list[ShipmentTrack], data: dict[str, Any],
                     exception: tuple[str, bool, datetime, str] | None = None) -> None:
        """A device-level event once per shipment it concerns (or once without one)."""
        targets: list[ShipmentTrack | None] = list(ships) or [None]
        for ship in targets:
            self.emit(st, type_, ts, device_id, shipment_id=ship.id if ship else None,
                      data=data)
            if ship is not None and exception is not None:
                kind, is_open, since, reason = exception
                self.flag(st, device_id, ts, ExceptionOp(ship.id, kind, is_open, since, reason,
                                                         data))

    def flag(self, st: DeviceState, device_id: str, ts: datetime, op: ExceptionOp) -> None:
        """An exception of a detector opened or closed, and its ``shipment.exception`` /
        ``shipment.exception_cleared`` event (the event every exception has, whatever
        raised it; the detector's own event is beside it)."""
        self.out.exceptions.append(op)
        code = op.code or detector_code(op.kind)
        if op.open:
            data: dict[str, Any] = {"kind": op.kind, "code": code, "reason": op.reason,
                                    "source": DEVICE}
        else:
            data = {"cleared": [{"kind": op.kind, "code": code}], "source": DEVICE}
        self.emit(st, ev.SHIPMENT_EXCEPTION if op.open else ev.SHIPMENT_EXCEPTION_CLEARED, ts,
                  device_id, shipment_id=op.shipment_id, data=data,
                  discriminator=f"{op.kind}@{iso(op.since)}")

    def milestone(self, ship: ShipmentTrack, kind: str, ts: datetime, source: str,
                  data: dict[str, Any], geofence_id: str | None = None) -> bool:
        status = self.ship_status(ship)
        if ship.created_at is not None and ts < ship.created_at:
            return False  # before the shipment existed (SPEC: created first)
        if kind == HUB:
            if status in FINAL or (ship.id, ts) in self.hubs:
                return False
            self.hubs.add((ship.id, ts))
        elif not can_move(status, kind):
            return False
        if kind != HUB:  # statuses in time order; a hub scan keeps its own time
            last = self.last_ms.get(ship.id, ship.last_ts)
            if last is not None and ts < last:
                ts = last
            self.last_ms[ship.id] = ts
            self.status[ship.id] = kind
        event = milestone_event(ship.id, ship.reference, ship.device_id, kind, ts, source,
                                self.status.get(ship.id, status), data, geofence_id)
        self.out.items.append(MilestoneOp(ship.id, kind, ts, source, dict(data), event))
        if kind in FINAL:
            for cleared in CLEARED_WHEN_FINAL:  # by any final status
                self.out.exceptions.append(ExceptionOp(ship.id, cleared, False, ts))
        return True

    # the run -----------------------------------------------------------------------------

    def run(self, fixes: list[Fix], scans: list[Scan]) -> None:
        pairs = self.fence_pairs(fixes)
        self.classify_routes(fixes)
        items: list[tuple[datetime, int, int]] = [(f.ts, 0, i) for i, f in enumerate(fixes)]
        items += [(s.ts, 1, i) for i, s in enumerate(scans)]
        items.sort()
        for _, kind, i in items:
            if kind == 0:
                self.on_fix(i, fixes[i], pairs.get(i, ()))
            else:
                self.on_scan(scans[i])

    def margins(self, fixes: list[Fix]) -> np.ndarray[Any, np.dtype[np.float64]]:
        acc = np.array([f.accuracy or 0.0 for f in fixes], dtype=np.float64)
        return np.clip(acc, self.cfg.margin_m, max(self.cfg.margin_m, MAX_MARGIN_M))

    def fence_pairs(self, fixes: list[Fix]) -> dict[int, list[tuple[int, int]]]:
        out: dict[int, list[tuple[int, int]]] = defaultdict(list)
        if not fixes or not len(self.view.index):
            return out
        lats = np.array([f.lat for f in fixes], dtype=np.float64)
        lons = np.array([f.lon for f in fixes], dtype=np.float64)
        pairs = self.view.index.classify(lats, lons, self.margins(fixes))
        for fi, fe, c in zip(pairs.fix.tolist(), pairs.fence.tolist(), pairs.cls.tolist(),
                             strict=True):
            out[fi].append((fe, c))
        return out

    def classify_routes(self, fixes: list[Fix]) -> None:
        """Route corridor classes of each fix of a device with a routed shipment, for the
        whole batch in one vectorised pass."""
        pairs: list[tuple[int, ShipmentTrack]] = []
        for i, f in enumerate(fixes):
            for ship in self.view.by_device.get(f.device_id, ()):
                if ship.corridor is not None:
                    pairs.append((i, ship))
        if not pairs:
            return
        idx = np.array([i for i, _ in pairs])
        lats = np.array([fixes[i].lat for i, _ in pairs], dtype=np.float64)
        lons = np.array([fixes[i].lon for i, _ in pairs], dtype=np.float64)
        frames = [s.corridor for _, s in pairs if s.corridor is not None]
        cls, dist = classify_shapes(frames, lats, lons, self.margins(fixes)[idx])
        for (i, ship), c, d in zip(pairs, cls.tolist(), dist.tolist(), strict=True):
            self.route_cls[(i, ship.id)] = (c, d)

    # one fix -----------------------------------------------------------------------------

    def on_fix(self, i: int, fix: Fix, near: Iterable[tuple[int, int]]) -> None:
        ships = self.active(fix.device_id)
        st = self.work.get(fix.device_id) or self.view.states.get(fix.device_id)
        fresh = fix.ts >= self.now - self.cfg.offline_after
        if not near and not ships and st is not None and not st.areas and not st.shipments \
                and st.stop is None and not st.offline and (st.live or not fresh):
            return  # nothing to track for this fix: no state touched
        st = self.state(fix.device_id)
        if st.offline:
            self.online(st, fix, ships)
        if fresh and not st.live:
            st.live = True
        changes = self.areas(st, fix, near, ships)
        for ship in ships:
            self.shipment(st, i, fix, ship, changes)
        for sid in [s for s in st.shipments if s not in {x.id for x in ships}]:
            del st.shipments[sid]
        self.stop(st, fix, ships)

    def online(self, st: DeviceState, fix: Fix, ships: list[ShipmentTrack]) -> None:
        since = st.offline_since or fix.ts
        data = {"offline_since": iso(since), "lat": fix.lat, "lon": fix.lon}
        self.per_shipment(st, ev.DEVICE_ONLINE, fix.ts, fix.device_id, ships, data,
                          ("device.offline", False, since, ""))
        st.offline, st.offline_since = False, None

    def offline(self, device_id: str, last_ts: datetime) -> None:
        st = self.state(device_id)
        if st.offline:
            return
        st.offline, st.offline_since = True, last_ts
        ts = last_ts + self.cfg.offline_after
        data = {"last_seen": iso(last_ts),
                "offline_after_s": self.cfg.offline_after.total_seconds()}
        reason = f"no position since {iso(last_ts)}"
        self.per_shipment(st, ev.DEVICE_OFFLINE, ts, device_id, self.active(device_id), data,
                          ("device.offline", True, last_ts, reason))

    def classify_circle(self, area: Area, fix: Fix, margin: float) -> int:
        d = haversine_m(fix.lat, fix.lon, area.lat, area.lon)
        if abs(d - area.radius_m) <= margin:
            return EDGE
        return IN if d < area.radius_m else OUT

    def areas(self, st: DeviceState, fix: Fix, near: Iterable[tuple[int, int]],
              ships: list[ShipmentTrack]) -> dict[str, list[tuple[Change, datetime]]]:
        index = self.view.index
        fence_cls = {index.fences[k].id: c for k, c in near}
        margin = min(max(fix.accuracy or 0.0, self.cfg.margin_m),
                     max(self.cfg.margin_m, MAX_MARGIN_M))
        ship_areas: dict[str, tuple[Area, timedelta | None]] = {}
        for ship in ships:
            if ship.origin is not None:
                ship_areas[ship.origin.key] = (ship.origin, None)
            ship_areas[ship.destination.key] = (ship.destination, self.cfg.delivery_dwell)
        changes: dict[str, list[tuple[Change, datetime]]] = {}
        for key in sorted(set(fence_cls) | set(st.areas) | set(ship_areas)):
            fence_i = index.by_id.get(key)
            if key in ship_areas:
                area, dwell = ship_areas[key]
                if area.fence_id is not None:
                    cls = fence_cls.get(area.fence_id, OUT)
                else:
                    cls = self.classify_circle(area, fix, margin)
            elif fence_i is not None:
                spec = index.fences[fence_i].spec
                cls = fence_cls.get(key, OUT)
                dwell = self.cfg.dwell if spec.dwell_s is None else timedelta(
                    seconds=spec.dwell_s)
            else:
                st.areas.pop(key, None)  # a fence deleted, a shipment delivered
                continue
            old = st.areas.get(key) or AreaState()
            new, happened = step_area(old, cls, fix.ts, self.cfg.debounce, dwell)
            if new.is_default():
                st.areas.pop(key, None)
            else:
                st.areas[key] = new
            if happened:
                changes[key] = happened
                if key not in ship_areas and fence_i is not None:
                    self.fence_events(st, fix, fence_i, happened, dwell)
        return changes

    def fence_events(self, st: DeviceState, fix: Fix, fence_i: int,
                     happened: list[tuple[Change, datetime]], dwell: timedelta | None) -> None:
        fence = self.view.index.fences[fence_i]
        types = {"enter": ev.GEOFENCE_ENTER, "exit": ev.GEOFENCE_EXIT,
                 "dwell": ev.GEOFENCE_DWELL}
        for change, ts in happened:
            data: dict[str, Any] = {"name": fence.name, "lat": fix.lat, "lon": fix.lon}
            if change == "dwell" and dwell is not None:
                data["dwell_s"] = dwell.total_seconds()
            self.emit(st, types[change], ts, fix.device_id, geofence_id=fence.id, data=data)
            if change == "enter" and fence.spec.delivery_zone:
                for ship in self.active(fix.device_id):
                    if fence.id in ship.delivery_zones and self.ship_status(ship) in (
                            "picked_up", "in_transit"):
                        self.milestone(ship, "out_for_delivery", ts, DEVICE,
                                       {"lat": fix.lat, "lon": fix.lon}, geofence_id=fence.id)

    # shipments ---------------------------------------------------------------------------

    def shipment(self, st: DeviceState, i: int, fix: Fix, ship: ShipmentTrack,
                 changes: dict[str, list[tuple[Change, datetime]]]) -> None:
        ss = st.shipments.get(ship.id) or ShipmentState()
        self.milestones(st, fix, ship, ss, changes)
        if self.ship_status(ship) in IN_TRANSIT:
            self.sensors(st, fix, ship, ss)
            self.route(st, i, fix, ship, ss)
        if ss.is_default():
            st.shipments.pop(ship.id, None)
        else:
            st.shipments[ship.id] = ss

    def milestones(self, st: DeviceState, fix: Fix, ship: ShipmentTrack, ss: ShipmentState,
                   changes: dict[str, list[tuple[Change, datetime]]]) -> None:
        where = {"lat": fix.lat, "lon": fix.lon}
        if ship.origin is not None:  # a carrier leg may have no origin
            for change, ts in changes.get(ship.origin.key, ()):
                if change == "exit":
                    self.milestone(ship, "picked_up", ts, DEVICE, where, ship.origin.fence_id)
        origin = None if ship.origin is None else st.areas.get(ship.origin.key)
        if self.ship_status(ship) == "picked_up" and (origin is None or not origin.inside) \
                and (ship.origin is None or self.view.area_distance_m(
                    ship.origin, fix.lat, fix.lon) >= self.cfg.in_transit_m):
            self.milestone(ship, "in_transit", fix.ts, DEVICE, where)
        if self.ship_status(ship) in ("picked_up", "in_transit") and self.view.area_distance_m(
                ship.destination, fix.lat, fix.lon) <= self.cfg.out_for_delivery_m:
            self.milestone(ship, "out_for_delivery", fix.ts, DEVICE, where,
                           ship.destination.fence_id)
        for change, _ts in changes.get(ship.destination.key, ()):
            arrived = st.areas.get(ship.destination.key)
            if change == "dwell" and arrived is not None and arrived.since is not None and \
                    RANK[self.ship_status(ship)] >= RANK["picked_up"]:
                self.milestone(ship, "delivered", arrived.since, DEVICE, where,
                               ship.destination.fence_id)

    def sensors(self, st: DeviceState, fix: Fix, ship: ShipmentTrack,
                ss: ShipmentState) -> None:
        readings = fix.sensors or {}
        for key, limit in ship.limits.items():
            value = readings.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or not math.isfinite(value):
                continue
            old = ss.sensors.get(key) or Spell()
            new, change = step_limit(old, limit, float(value), fix.ts)
            if new.is_default():
                ss.sensors.pop(key, None)
            else:
                ss.sensors[key] = new
            if change is None:
                continue
            kind = f"sensor.excursion:{key}"
            since = (new if change == "start" else old).since or fix.ts
            data = {"sensor": key, "value": float(value), "min": limit.min, "max": limit.max,
                    "since": iso(since), "for_s": limit.for_s}
            if change == "start":
                data["peak"] = new.peak
                reason = f"{key} {value:g} outside {_range(limit)} since {iso(since)}"
                self.emit(st, ev.SENSOR_EXCURSION, fix.ts, fix.device_id, shipment_id=ship.id,
                          data=data, discriminator=key)
                self.flag(st, fix.device_id, fix.ts, ExceptionOp(ship.id, kind, True, since,
                                                                 reason, data))
            else:
                data["peak"] = old.peak
                data["duration_s"] = (fix.ts - since).total_seconds()
                self.emit(st, ev.SENSOR_EXCURSION_RESOLVED, fix.ts, fix.device_id,
                          shipment_id=ship.id, data=data, discriminator=key)
                self.flag(st, fix.device_id, fix.ts, ExceptionOp(ship.id, kind, False, since))

    def route(self, st: DeviceState, i: int, fix: Fix, ship: ShipmentTrack,
              ss: ShipmentState) -> None:
        found = self.route_cls.get((i, ship.id))
        if found is None:
            return
        cls, dist = found
        if cls == EDGE:
            return  # within the fix's accuracy of the corridor's edge: no news
        old = ss.route
        new, change = step_spell(old, cls == OUT, fix.ts, self.cfg.deviation_grace, dist,
                                 worse=old.peak is None or dist > old.peak)
        ss.route = new
        if change is None:
            return
        since = (new if change == "start" else old).since or fix.ts
        data: dict[str, Any] = {"since": iso(since), "lat": fix.lat, "lon": fix.lon}
        if change == "start":
            data["distance_m"] = round(dist, 1)
            reason = f"off the planned route by {dist:.0f} m since {iso(since)}"
            self.emit(st, ev.ROUTE_DEVIATION, fix.ts, fix.device_id, shipment_id=ship.id,
                      data=data)
            self.flag(st, fix.device_id, fix.ts, ExceptionOp(ship.id, "route.deviation", True,
                                                             since, reason, data))
        else:
            data["max_distance_m"] = round(old.peak or 0.0, 1)
            data["duration_s"] = (fix.ts - since).total_seconds()
            self.emit(st, ev.ROUTE_DEVIATION_RESOLVED, fix.ts, fix.device_id,
                      shipment_id=ship.id, data=data)
            self.flag(st, fix.device_id, fix.ts, ExceptionOp(ship.id, "route.deviation", False,
                                                             since))

    def stop(self, st: DeviceState, fix: Fix, ships: list[ShipmentTrack]) -> None:
        moving = [s for s in ships if self.ship_status(s) in IN_TRANSIT]
        if not moving:
            st.stop = None
            return
        old = st.stop
        moved = None if old is None else haversine_m(old.lat, old.lon, fix.lat, fix.lon)
        eligible = not any(a.inside for a in st.areas.values())
        new, change = step_stop(old, fix.lat, fix.lon, fix.ts, moved, self.cfg.stop_radius_m,
                                self.cfg.long_stop, eligible)
        st.stop = new
        if change is None or old is None:
            return
        minutes = (fix.ts - old.since).total_seconds() / 60.0
        data = {"since": iso(old.since), "lat": old.lat, "lon": old.lon,
                "minutes": round(minutes, 1)}
        if change == "start":
            reason = (f"stopped for {minutes:.0f} min outside known places since "
                      f"{iso(old.since)}")
            self.per_shipment(st, ev.LONG_STOP, fix.ts, fix.device_id, moving, data,
                              ("device.long_stop", True, old.since, reason))
        else:
            self.per_shipment(st, ev.LONG_STOP_RESOLVED, fix.ts, fix.device_id, moving, data,
                              ("device.long_stop", False, old.since, ""))

    # scans -------------------------------------------------------------------------------

    def on_scan(self, scan: Scan) -> None:
        ship = self.view.by_reference.get(scan.shipment_ref)
        if ship is None:
            if scan.shipment_ref in self.view.known_refs:
                SCANS.labels("delivered").inc()  # late scan of a finished shipment
                return
            SCANS.labels("unknown").inc()
            self.out.rejections.append(Rejection(
                reason="unknown_shipment", detail=unknown_reference(scan.shipment_ref),
                topic=scan.topic, payload=scan.payload))
            return
        action = scan_action(scan, ship.id, ship.device_id, self.ship_status(ship))
        if action.late:
            SCANS.labels("delivered").inc()
            return
        SCANS.labels("matched").inc()
        x = action.exception
        if x is not None:  # damaged or lost: an exception with that code (status unchanged)
            self.out.items.append(x.event)
            self.out.exceptions.append(ExceptionOp(ship.id, x.kind, True, scan.ts, x.reason,
                                                   action.data, code=x.code))
        for kind in action.milestones:
            self.milestone(ship, kind, scan.ts, SCAN, action.data)


def _range(limit: Limit) -> str:
    lo = "-inf" if limit.min is None else f"{limit.min:g}"
    hi = "inf" if limit.max is None else f"{limit.max:g}"
    return f"{lo}..{hi}"
