"""Tracking: from fixes and scans to geofence events, shipment milestones and exceptions.

``Tracker.process`` takes one batch (the fixes that advanced their devices' live
positions, in time order, and the batch's scans) and returns an ``Outcome``: events,
guarded milestone writes, exception flags and the new per-device states. Nothing in it
is applied until the caller has committed the outcome in the same transaction as the
positions (``commit``); a batch that fails leaves the tracker as it was, and the same
fixes processed again give the same events with the same ids.

Per device, in ``ts`` order:

1. online: the first fix after ``device.offline`` sends ``device.online``;
2. areas: every fence the fix is in or near (``FenceIndex``), every area the device is
   in or about to leave, and its shipments' origin and destination, through
   ``step_area`` (debounced); fences give ``geofence.enter/exit/dwell``;
3. shipments (not delivered): milestones (module ``MILESTONES`` below), then sensor
   excursions and route deviation while under way;
4. long stop while a shipment is under way.

Events of one device never go back in time: an event is dated no earlier than the
device's previous one. The periodic ``sweep`` sends ``device.offline``.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import msgspec
import numpy as np
import shapely
from prometheus_client import Counter, Histogram
from shapely.geometry.base import BaseGeometry

from ingest.fence_index import FenceIndex, classify_shapes
from ingest.outliers import haversine_m
from ingest.tracking_rules import (
    EDGE,
    IN,
    OUT,
    AreaState,
    Change,
    Spell,
    StopState,
    step_area,
    step_limit,
    step_spell,
    step_stop,
)
from shiptrack import events as ev
from shiptrack.config import Settings
from shiptrack.events import Event
from shiptrack.fix import Fix, Rejection
from shiptrack.scans import Scan
from shiptrack.shipments import HUB, IN_TRANSIT, RANK, SCAN_KINDS, Limit, rank

log = logging.getLogger("shiptrack.ingest")

EVENTS = Counter("shiptrack_tracking_events", "Tracking events produced, by type", ["type"])
SCANS = Counter("shiptrack_tracking_scans", "Scans handled, by result", ["result"])
SECONDS = Histogram("shiptrack_tracking_seconds", "Tracking work per batch",
                    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
MAX_MARGIN_M = 250.0  # a fix's accuracy beyond this widens the edge band no further
CLEARED_ON_DELIVERY = ("device.offline", "device.long_stop", "route.deviation")


@dataclass(frozen=True, slots=True)
class TrackingConfig:
    debounce: timedelta = timedelta(seconds=15)
    dwell: timedelta = timedelta(minutes=5)
    margin_m: float = 10.0
    offline_after: timedelta = timedelta(minutes=15)
    in_transit_m: float = 1000.0
    out_for_delivery_m: float = 10_000.0
    delivery_dwell: timedelta = timedelta(minutes=2)
    corridor_m: float = 1000.0
    deviation_grace: timedelta = timedelta(minutes=5)
    long_stop: timedelta = timedelta(minutes=30)
    stop_radius_m: float = 150.0

    @classmethod
    def from_settings(cls, s: Settings) -> TrackingConfig:
        return cls(
            debounce=timedelta(seconds=s.geofence_debounce_s),
            dwell=timedelta(seconds=s.geofence_dwell_s), margin_m=s.geofence_margin_m,
            offline_after=timedelta(seconds=s.offline_after_s), in_transit_m=s.in_transit_m,
            out_for_delivery_m=s.out_for_delivery_m,
            delivery_dwell=timedelta(seconds=s.delivery_dwell_s),
            corridor_m=s.route_corridor_m,
            deviation_grace=timedelta(seconds=s.route_deviation_grace_s),
            long_stop=timedelta(seconds=s.long_stop_s), stop_radius_m=s.stop_radius_m,
        )


# -- persisted state ------------------------------------------------------------------------

class ShipmentState(msgspec.Struct, omit_defaults=True, kw_only=True):
    sensors: dict[str, Spell] = msgspec.field(default_factory=dict)
    route: Spell = msgspec.field(default_factory=Spell)

    def is_default(self) -> bool:
        return not self.sensors and self.route.is_default()


class DeviceState(msgspec.Struct, omit_defaults=True, kw_only=True):
    """Everything tracking remembers about one device (``device_tracking.state``)."""

    areas: dict[str, AreaState] = msgspec.field(default_factory=dict)
    shipments: dict[str, ShipmentState] = msgspec.field(default_factory=dict)
    stop: StopState | None = None
    live: bool = False  # has sent fresh fixes: watched for going offline
    offline: bool = False
    offline_since: datetime | None = None  # its last fix before it went offline
    last_event: datetime | None = None


_state_encoder = msgspec.json.Encoder()
_state_decoder = msgspec.json.Decoder(DeviceState)


def encode_state(state: DeviceState) -> bytes:
    return _state_encoder.encode(state)


def decode_state(raw: Any) -> DeviceState:
    if isinstance(raw, bytes | str):
        return _state_decoder.decode(raw)
    return msgspec.convert(raw, DeviceState)


# -- shipments as ingest sees them ----------------------------------------------------------

@dataclass(slots=True)
class Area:
    """A shipment's origin or destination: a circle, or a geofence (by id)."""

    key: str  # its state key in DeviceState.areas
    fence_id: str | None = None
    lat: float = 0.0
    lon: float = 0.0
    radius_m: float = 0.0


@dataclass(slots=True)
class ShipmentTrack:
    id: str
    reference: str
    device_id: str
    status: str
    origin: Area
    destination: Area
    limits: dict[str, Limit] = field(default_factory=dict)
    corridor: tuple[float, BaseGeometry, BaseGeometry] | None = None
    last_ts: datetime | None = None  # its latest milestone
    delivery_zones: frozenset[str] = frozenset()


# -- what a batch produces -------------------------------------------------------------------

@dataclass(slots=True)
class MilestoneOp:
    shipment_id: str
    kind: str
    ts: datetime
    source: str
    data: dict[str, Any]
    event: Event


@dataclass(slots=True)
class ExceptionOp:
    shipment_id: str
    kind: str
    open: bool
    since: datetime
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Outcome:
    """In order: ``items`` are events and milestone writes as they happened."""

    items: list[Event | MilestoneOp] = field(default_factory=list)
    exceptions: list[ExceptionOp] = field(default_factory=list)
    states: dict[str, DeviceState] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.items or self.exceptions or self.states)


class StateSource(Protocol):
    """Where the tracker reads what it does not hold (ingest: the database)."""

    def load_states(self, device_ids: list[str]) -> dict[str, DeviceState]: ...

    def known_references(self, refs: list[str]) -> set[str]: ...


# -- the tracker -----------------------------------------------------------------------------

class Tracker:
    def __init__(self, config: TrackingConfig) -> None:
        self.config = config
        self.index = FenceIndex()
        self.states: dict[str, DeviceState] = {}
        self.shipments: dict[str, ShipmentTrack] = {}
        self.by_device: dict[str, list[ShipmentTrack]] = {}
        self.by_reference: dict[str, ShipmentTrack] = {}
        self.stale = False  # a milestone write lost a race: reload shipments

    # configuration -------------------------------------------------------------------------

    def set_fences(self, index: FenceIndex) -> None:
        self.index = index
        self.set_shipments(list(self.shipments.values()))  # delivery zones depend on fences

    def set_shipments(self, shipments: Iterable[ShipmentTrack]) -> None:
        zones = [f for f in self.index.fences if f.spec.delivery_zone]
        self.shipments, self.by_device, self.by_reference = {}, defaultdict(list), {}
        for s in shipments:
            s.delivery_zones = frozenset(
                f.id for f in zones if _area_in_fence(s.destination, f.spec.shape, self))
            self.shipments[s.id] = s
            self.by_device[s.device_id].append(s)
            self.by_reference[s.reference] = s
        self.stale = False

    def reset_states(self) -> None:
        """Forget cached device states (they are reloaded from the database)."""
        self.states.clear()

    # the batch -------------------------------------------------------------------------------

    def process(self, source: StateSource, fixes: list[Fix], scans: list[Scan],
                now: datetime) -> Outcome:
        """One batch; ``fixes`` in ts order (the ones that advanced live positions)."""
        with SECONDS.time():
            batch = _Batch(self, source, now)
            batch.load({f.device_id for f in fixes}, scans)
            batch.run(fixes, scans)
            return batch.outcome()

    def sweep(self, source: StateSource, silent: list[tuple[str, datetime]],
              now: datetime) -> Outcome:
        """``device.offline`` for devices whose last fix (``silent``: id, its ts) is older
        than ``offline_after``."""
        batch = _Batch(self, source, now)
        batch.load({d for d, _ in silent}, [])
        for device_id, last_ts in silent:
            batch.offline(device_id, last_ts)
        return batch.outcome()

    def commit(self, outcome: Outcome, applied: set[tuple[str, str, datetime]]) -> None:
        """Apply a committed outcome; ``applied``: the milestone writes that took effect
        (shipment id, kind, ts)."""
        self.states.update(outcome.states)
        for item in outcome.items:
            if not isinstance(item, MilestoneOp):
                continue
            ship = self.shipments.get(item.shipment_id)
            if (item.shipment_id, item.kind, item.ts) not in applied:
                if item.kind != HUB:  # the API moved it meanwhile: take the database's view
                    self.stale = True
                continue
            if ship is None:
                continue
            ship.last_ts = max(ship.last_ts or item.ts, item.ts)
            if item.kind != HUB and RANK[item.kind] > RANK[ship.status]:
                ship.status = item.kind
            if ship.status == "delivered":
                self._drop(ship)
        for name, count in _count_types(outcome).items():
            EVENTS.labels(name).inc(count)

    def _drop(self, ship: ShipmentTrack) -> None:
        self.shipments.pop(ship.id, None)
        self.by_reference.pop(ship.reference, None)
        same = self.by_device.get(ship.device_id, [])
        self.by_device[ship.device_id] = [s for s in same if s.id != ship.id]

    # helpers for _Batch ----------------------------------------------------------------------

    def area_distance_m(self, area: Area, lat: float, lon: float) -> float:
        if area.fence_id is None:
            return max(0.0, haversine_m(lat, lon, area.lat, area.lon) - area.radius_m)
        i = self.index.by_id.get(area.fence_id)
        return math.inf if i is None else self.index.distance_m(i, lat, lon)

    def area_anchor(self, area: Area) -> tuple[float, float] | None:
        if area.fence_id is None:
            return area.lat, area.lon
        i = self.index.by_id.get(area.fence_id)
        return None if i is None else self.index.anchor(i)


def _area_in_fence(area: Area, shape: Any, tracker: Tracker) -> bool:
    anchor = tracker.area_anchor(area)
    if anchor is None:
        return False
    return bool(shapely.intersects_xy(shape.geometry, anchor[1], anchor[0]))


def _count_types(outcome: Outcome) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for item in outcome.items:
        counts[item.type if isinstance(item, Event) else item.event.type] += 1
    return counts


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


class _Batch:
    """The work of one batch: copies of the states it touches, and what it produced."""

    def __init__(self, tracker: Tracker, source: StateSource, now: datetime) -> None:
        self.t = tracker
        self.cfg = tracker.config
        self.source = source
        self.now = now
        self.out = Outcome()
        self.work: dict[str, DeviceState] = {}
        self.before: dict[str, bytes] = {}
        self.status: dict[str, str] = {}  # shipment id -> status during this batch
        self.last_ms: dict[str, datetime | None] = {}
        self.known_refs: set[str] = set()
        self.route_cls: dict[tuple[int, str], tuple[int, float]] = {}
        self.hubs: set[tuple[str, datetime]] = set()

    # loading -----------------------------------------------------------------------------

    def load(self, devices: set[str], scans: list[Scan]) -> None:
        refs = {s.shipment_ref for s in scans}
        for ref in refs:
            ship = self.t.by_reference.get(ref)
            if ship is not None:
                devices.add(ship.device_id)
        missing = sorted(d for d in devices if d not in self.t.states)
        if missing:
            loaded = self.source.load_states(missing)
            for d in missing:
                self.t.states[d] = loaded.get(d) or DeviceState()
        unknown = sorted(r for r in refs if r not in self.t.by_reference)
        if unknown:
            self.known_refs = self.source.known_references(unknown)

    def state(self, device_id: str) -> DeviceState:
        st = self.work.get(device_id)
        if st is None:
            base = self.t.states.get(device_id) or DeviceState()
            raw = encode_state(base)
            self.before[device_id] = raw
            st = self.work[device_id] = _state_decoder.decode(raw)
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
        return [s for s in self.t.by_device.get(device_id, ())
                if self.ship_status(s) != "delivered"]

    # emitting ----------------------------------------------------------------------------

    def emit(self, st: DeviceState, type_: str, ts: datetime, device_id: str, *,
             shipment_id: str | None = None, geofence_id: str | None = None,
             data: dict[str, Any] | None = None, discriminator: str = "") -> Event:
        if st.last_event is not None and ts < st.last_event:
            ts = st.last_event
        st.last_event = ts
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
                self.out.exceptions.append(ExceptionOp(ship.id, kind, is_open, since, reason,
                                                       data))

    def milestone(self, ship: ShipmentTrack, kind: str, ts: datetime, source: str,
                  data: dict[str, Any], geofence_id: str | None = None) -> bool:
        status = self.ship_status(ship)
        if kind == HUB:
            if status == "delivered" or (ship.id, ts) in self.hubs:
                return False
            self.hubs.add((ship.id, ts))
        elif RANK[kind] <= RANK[status]:
            return False
        last = self.last_ms.get(ship.id, ship.last_ts)
        if last is not None and ts < last:
            ts = last
        self.last_ms[ship.id] = ts
        if kind != HUB:
            self.status[ship.id] = kind
        body = {"kind": kind, "source": source, "reference": ship.reference,
                "status": self.status.get(ship.id, status), **data}
        event = ev.make_event(ev.SHIPMENT_MILESTONE, ts, device_id=ship.device_id,
                              shipment_id=ship.id, geofence_id=geofence_id, data=body,
                              discriminator=kind + str(data.get("scanner_id", "")))
        self.out.items.append(MilestoneOp(ship.id, kind, ts, source, dict(data), event))
        if kind == "delivered":
            for cleared in CLEARED_ON_DELIVERY:
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
        if not fixes or not len(self.t.index):
            return out
        lats = np.array([f.lat for f in fixes], dtype=np.float64)
        lons = np.array([f.lon for f in fixes], dtype=np.float64)
        pairs = self.t.index.classify(lats, lons, self.margins(fixes))
        for fi, fe, c in zip(pairs.fix.tolist(), pairs.fence.tolist(), pairs.cls.tolist(),
                             strict=True):
            out[fi].append((fe, c))
        return out

    def classify_routes(self, fixes: list[Fix]) -> None:
        """Route corridor classes of each fix of a device with a routed shipment, for the
        whole batch in one vectorised pass."""
        pairs: list[tuple[int, ShipmentTrack]] = []
        for i, f in enumerate(fixes):
            for ship in self.t.by_device.get(f.device_id, ()):
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
        st = self.t.states.get(fix.device_id)
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
        data = {"offline_since": _iso(since), "lat": fix.lat, "lon": fix.lon}
        self.per_shipment(st, ev.DEVICE_ONLINE, fix.ts, fix.device_id, ships, data,
                          ("device.offline", False, since, ""))
        st.offline, st.offline_since = False, None

    def offline(self, device_id: str, last_ts: datetime) -> None:
        st = self.state(device_id)
        if st.offline:
            return
        st.offline, st.offline_since = True, last_ts
        ts = last_ts + self.cfg.offline_after
        data = {"last_seen": _iso(last_ts),
                "offline_after_s": self.cfg.offline_after.total_seconds()}
        reason = f"no position since {_iso(last_ts)}"
        self.per_shipment(st, ev.DEVICE_OFFLINE, ts, device_id, self.active(device_id), data,
                          ("device.offline", True, last_ts, reason))

    def classify_circle(self, area: Area, fix: Fix, margin: float) -> int:
        d = haversine_m(fix.lat, fix.lon, area.lat, area.lon)
        if abs(d - area.radius_m) <= margin:
            return EDGE
        return IN if d < area.radius_m else OUT

    def areas(self, st: DeviceState, fix: Fix, near: Iterable[tuple[int, int]],
              ships: list[ShipmentTrack]) -> dict[str, list[tuple[Change, datetime]]]:
        index = self.t.index
        fence_cls = {index.fences[k].id: c for k, c in near}
        margin = min(max(fix.accuracy or 0.0, self.cfg.margin_m),
                     max(self.cfg.margin_m, MAX_MARGIN_M))
        ship_areas: dict[str, tuple[Area, timedelta | None]] = {}
        for ship in ships:
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
        fence = self.t.index.fences[fence_i]
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
                        self.milestone(ship, "out_for_delivery", ts, "geofence",
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
        for change, ts in changes.get(ship.origin.key, ()):
            if change == "exit":
                self.milestone(ship, "picked_up", ts, "geofence", where, ship.origin.fence_id)
        origin = st.areas.get(ship.origin.key)
        if self.ship_status(ship) == "picked_up" and (origin is None or not origin.inside) \
                and self.t.area_distance_m(ship.origin, fix.lat, fix.lon) >= self.cfg.in_transit_m:
            self.milestone(ship, "in_transit", fix.ts, "geofence", where)
        if self.ship_status(ship) in ("picked_up", "in_transit") and self.t.area_distance_m(
                ship.destination, fix.lat, fix.lon) <= self.cfg.out_for_delivery_m:
            self.milestone(ship, "out_for_delivery", fix.ts, "geofence", where,
                           ship.destination.fence_id)
        for change, _ts in changes.get(ship.destination.key, ()):
            arrived = st.areas.get(ship.destination.key)
            if change == "dwell" and arrived is not None and arrived.since is not None and \
                    RANK[self.ship_status(ship)] >= RANK["picked_up"]:
                self.milestone(ship, "delivered", arrived.since, "geofence", where,
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
                    "since": _iso(since), "for_s": limit.for_s}
            if change == "start":
                data["peak"] = new.peak
                reason = f"{key} {value:g} outside {_range(limit)} since {_iso(since)}"
                self.emit(st, ev.SENSOR_EXCURSION, fix.ts, fix.device_id, shipment_id=ship.id,
                          data=data, discriminator=key)
                self.out.exceptions.append(ExceptionOp(ship.id, kind, True, since, reason, data))
            else:
                data["peak"] = old.peak
                data["duration_s"] = (fix.ts - since).total_seconds()
                self.emit(st, ev.SENSOR_EXCURSION_RESOLVED, fix.ts, fix.device_id,
                          shipment_id=ship.id, data=data, discriminator=key)
                self.out.exceptions.append(ExceptionOp(ship.id, kind, False, since))

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
        data: dict[str, Any] = {"since": _iso(since), "lat": fix.lat, "lon": fix.lon}
        if change == "start":
            data["distance_m"] = round(dist, 1)
            reason = f"off the planned route by {dist:.0f} m since {_iso(since)}"
            self.emit(st, ev.ROUTE_DEVIATION, fix.ts, fix.device_id, shipment_id=ship.id,
                      data=data)
            self.out.exceptions.append(ExceptionOp(ship.id, "route.deviation", True, since,
                                                   reason, data))
        else:
            data["max_distance_m"] = round(old.peak or 0.0, 1)
            data["duration_s"] = (fix.ts - since).total_seconds()
            self.emit(st, ev.ROUTE_DEVIATION_RESOLVED, fix.ts, fix.device_id,
                      shipment_id=ship.id, data=data)
            self.out.exceptions.append(ExceptionOp(ship.id, "route.deviation", False, since))

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
        data = {"since": _iso(old.since), "lat": old.lat, "lon": old.lon,
                "minutes": round(minutes, 1)}
        if change == "start":
            reason = (f"stopped for {minutes:.0f} min outside known places since "
                      f"{_iso(old.since)}")
            self.per_shipment(st, ev.LONG_STOP, fix.ts, fix.device_id, moving, data,
                              ("device.long_stop", True, old.since, reason))
        else:
            self.per_shipment(st, ev.LONG_STOP_RESOLVED, fix.ts, fix.device_id, moving, data,
                              ("device.long_stop", False, old.since, ""))

    # scans -------------------------------------------------------------------------------

    def on_scan(self, scan: Scan) -> None:
        ship = self.t.by_reference.get(scan.shipment_ref)
        if ship is None or self.ship_status(ship) == "delivered":
            if ship is not None or scan.shipment_ref in self.known_refs:
                SCANS.labels("delivered").inc()  # late scan of a finished shipment
                return
            SCANS.labels("unknown").inc()
            self.out.rejections.append(Rejection(
                reason="unknown_shipment",
                detail=f"no shipment with reference {scan.shipment_ref[:100]!r}",
                topic=scan.topic, payload=scan.payload))
            return
        SCANS.labels("matched").inc()
        data: dict[str, Any] = {"scanner_id": scan.scanner_id}
        if scan.lat is not None and scan.lon is not None:
            data.update(lat=scan.lat, lon=scan.lon)
        kind = SCAN_KINDS[scan.kind]
        if kind == HUB and rank(self.ship_status(ship)) < RANK["in_transit"]:
            self.milestone(ship, "in_transit", scan.ts, "scan", data)
        self.milestone(ship, kind, scan.ts, "scan", data)


def _range(limit: Limit) -> str:
    lo = "-inf" if limit.min is None else f"{limit.min:g}"
    hi = "inf" if limit.max is None else f"{limit.max:g}"
    return f"{lo}..{hi}"
