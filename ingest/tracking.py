"""Tracking: from fixes and scans to geofence events, shipment milestones and exceptions.

``Tracker.process`` takes one batch (the fixes that advanced their devices' live
positions, in time order, and the batch's scans) and returns an ``Outcome``: events,
guarded milestone writes, exception flags and the new per-device states. Nothing in it
is applied until the caller has committed the outcome in the same transaction as the
positions (``commit``); a batch that fails leaves the tracker as it was, and the same
fixes processed again give the same events with the same ids. The work of one batch is
in ``ingest.tracking_batch``, the state machines in ``ingest.tracking_rules``, the
data in ``ingest.tracking_model``. The periodic ``sweep`` sends ``device.offline``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import shapely
from prometheus_client import Counter, Histogram

from ingest.fence_index import FenceIndex
from ingest.tracking_batch import Batch
from ingest.tracking_model import (
    Area,
    DeviceState,
    ExceptionOp,
    MilestoneOp,
    Outcome,
    ShipmentState,
    ShipmentTrack,
    StateSource,
    TrackingConfig,
    count_types,
    decode_state,
    encode_state,
)
from shiptrack.eta.geo import haversine_m
from shiptrack.fix import Fix
from shiptrack.scans import Scan
from shiptrack.shipments import FINAL, HUB

__all__ = [
    "Area", "DeviceState", "ExceptionOp", "MilestoneOp", "Outcome", "ShipmentState",
    "ShipmentTrack", "StateSource", "Tracker", "TrackingConfig", "decode_state",
    "encode_state",
]

EVENTS = Counter("shiptrack_tracking_events", "Tracking events produced, by type", ["type"])
SECONDS = Histogram("shiptrack_tracking_seconds", "Tracking work per batch",
                    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))


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
            batch = Batch(self, source, now)
            batch.load({f.device_id for f in fixes}, scans)
            batch.run(fixes, scans)
            return batch.outcome()

    def sweep(self, source: StateSource, silent: list[tuple[str, datetime]],
              now: datetime) -> Outcome:
        """``device.offline`` for devices whose last fix (``silent``: id, its ts) is older
        than ``offline_after``."""
        batch = Batch(self, source, now)
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
            if item.kind != HUB:  # the guarded write took it: the transition was allowed
                ship.status = item.kind
                ship.last_ts = max(ship.last_ts or item.ts, item.ts)
            if ship.status in FINAL:
                self._drop(ship)
        for name, count in count_types(outcome).items():
            EVENTS.labels(name).inc(count)

    def _drop(self, ship: ShipmentTrack) -> None:
        self.shipments.pop(ship.id, None)
        self.by_reference.pop(ship.reference, None)
        same = self.by_device.get(ship.device_id, [])
        self.by_device[ship.device_id] = [s for s in same if s.id != ship.id]

    # helpers for Batch -----------------------------------------------------------------------

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
