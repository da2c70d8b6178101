"""Tracking: from fixes and scans to geofence events, shipment milestones and exceptions.

``Tracker`` holds what tracking keeps between batches (the fences, the active shipments
and the committed device states) and makes each batch's read-only ``TrackingView``
from it and from what the pipeline loaded for it (``wanted`` says what that is), before
tracking runs: nothing is read from the database while it runs.

``Tracker.process`` takes the view and one batch (the fixes that advanced their devices'
live positions, in time order, and the batch's scans) and returns an ``Outcome``:
events, guarded milestone writes, exception flags and the new per-device states. It is
pure: nothing is applied until the caller has committed the outcome in the same
transaction as the positions (``commit``); a batch that fails leaves the tracker as it
was, and the same fixes processed again give the same events with the same ids. The
work of one batch is ``ingest.tracking_run.Run``, the state machines are in
``ingest.tracking_rules``, the data in ``ingest.tracking_model``. The periodic
``sweep`` sends ``device.offline``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
from prometheus_client import Counter, Histogram

from ingest.fence_index import FenceIndex
from ingest.tracking_model import (
    Area,
    DeviceState,
    ExceptionOp,
    MilestoneOp,
    Outcome,
    ShipmentState,
    ShipmentTrack,
    TrackingConfig,
    TrackingView,
    count_types,
    decode_state,
    encode_state,
)
from ingest.tracking_run import Run
from shiptrack.fix import Fix
from shiptrack.scans import Scan
from shiptrack.shipments import FINAL, HUB

__all__ = [
    "Area", "DeviceState", "ExceptionOp", "MilestoneOp", "Outcome", "ShipmentState",
    "ShipmentTrack", "Tracker", "TrackingConfig", "TrackingView", "Wanted", "decode_state",
    "encode_state",
]

EVENTS = Counter("shiptrack_tracking_events", "Tracking events produced, by type", ["type"])
SECONDS = Histogram("shiptrack_tracking_seconds", "Tracking work per batch",
                    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a batch's view needs: its devices, and what the tracker does not hold."""

    devices: frozenset[str]
    missing: list[str]  # devices whose committed state is not cached: load them
    unknown: list[str]  # scan references that name no active shipment: look them up


class Tracker:
    def __init__(self, config: TrackingConfig) -> None:
        self.config = config
        self.index = FenceIndex()
        self.states: dict[str, DeviceState] = {}  # as committed
        self.shipments: dict[str, ShipmentTrack] = {}
        self.by_device: dict[str, list[ShipmentTrack]] = {}
        self.by_reference: dict[str, ShipmentTrack] = {}
        self.stale = False  # a milestone write lost a race (or state was forgotten): reload

    # configuration -------------------------------------------------------------------------

    def set_fences(self, index: FenceIndex) -> None:
        self.index = index
        self.set_shipments(list(self.shipments.values()))  # delivery zones depend on fences

    def set_shipments(self, shipments: Iterable[ShipmentTrack]) -> None:
        zones = [f for f in self.index.fences if f.spec.delivery_zone]
        view = TrackingView(self.index, {}, {})
        self.shipments, self.by_device, self.by_reference = {}, defaultdict(list), {}
        for s in shipments:
            s.delivery_zones = frozenset(
                f.id for f in zones if _area_in_fence(s.destination, f.spec.shape, view))
            self.shipments[s.id] = s
            self.by_device[s.device_id].append(s)
            self.by_reference[s.reference] = s
        self.stale = False

    def forget(self, device_ids: Iterable[str] | None = None) -> None:
        """Forget cached device states (None: all); they are reloaded from the database,
        and so are the shipments (another process may have moved them meanwhile)."""
        if device_ids is None:
            self.states.clear()
        else:
            for d in device_ids:
                self.states.pop(d, None)
        self.stale = True

    # the view of a batch -------------------------------------------------------------------

    def wanted(self, device_ids: Iterable[str], scans: Iterable[Scan] = ()) -> Wanted:
        """For the batch's devices (of its fixes) and scans."""
        refs = {s.shipment_ref for s in scans}
        devices = set(device_ids)
        devices |= {ship.device_id for r in refs if (ship := self.by_reference.get(r))}
        return Wanted(frozenset(devices), sorted(d for d in devices if d not in self.states),
                      sorted(r for r in refs if r not in self.by_reference))

    def view(self, wanted: Wanted, loaded: Mapping[str, DeviceState],
             known_refs: Iterable[str] = ()) -> TrackingView:
        """The batch's view; ``loaded``: the committed states of ``wanted.missing`` (a
        device without one starts afresh), kept as the tracker's from now on."""
        for d in wanted.missing:
            self.states[d] = loaded.get(d) or DeviceState()
        states = {d: self.states[d] for d in wanted.devices if d in self.states}
        return TrackingView(self.index, self.by_device, self.by_reference, states,
                            frozenset(known_refs))

    # the batch -------------------------------------------------------------------------------

    def process(self, view: TrackingView, fixes: list[Fix], scans: list[Scan],
                now: datetime) -> Outcome:
        """One batch; ``fixes`` in ts order (the ones that advanced live positions)."""
        with SECONDS.time():
            run = Run(view, self.config, now)
            run.run(fixes, scans)
            return run.outcome()

    def sweep(self, view: TrackingView, silent: list[tuple[str, datetime]],
              now: datetime) -> Outcome:
        """``device.offline`` for devices whose last fix (``silent``: id, its ts) is older
        than ``offline_after``."""
        run = Run(view, self.config, now)
        for device_id, last_ts in silent:
            run.offline(device_id, last_ts)
        return run.outcome()

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


def _area_in_fence(area: Area, shape: Any, view: TrackingView) -> bool:
    anchor = view.area_anchor(area)
    if anchor is None:
        return False
    return bool(shapely.intersects_xy(shape.geometry, anchor[1], anchor[0]))
