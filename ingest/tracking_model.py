"""The data of tracking: its settings, the per-device state it persists, shipments as
ingest sees them, the read-only ``TrackingView`` a batch runs over (loaded before it
runs), and the ``Outcome`` of a batch (what the store writes in the batch's
transaction)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec
from shapely.geometry.base import BaseGeometry

from ingest.fence_index import FenceIndex
from ingest.tracking_rules import AreaState, Spell, StopState
from shiptrack.config import Settings
from shiptrack.eta.geo import haversine_m
from shiptrack.events import Event
from shiptrack.fix import Rejection
from shiptrack.shipments import Limit

MAX_MARGIN_M = 250.0  # a fix's accuracy beyond this widens the edge band no further


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


state_encoder = msgspec.json.Encoder()
state_decoder = msgspec.json.Decoder(DeviceState)


def encode_state(state: DeviceState) -> bytes:
    return state_encoder.encode(state)


def decode_state(raw: Any) -> DeviceState:
    if isinstance(raw, bytes | str):
        return state_decoder.decode(raw)
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
    origin: Area | None  # None: a carrier shipment whose device leg names no origin
    destination: Area
    limits: dict[str, Limit] = field(default_factory=dict)
    corridor: tuple[float, BaseGeometry, BaseGeometry] | None = None
    last_ts: datetime | None = None  # its latest milestone
    delivery_zones: frozenset[str] = frozenset()
    # for the ETA stage (ingest.eta_stage): as stored when the shipment was loaded
    promised_by: datetime | None = None
    route: dict[str, Any] | None = None  # GeoJSON LineString
    at_risk: bool = False
    eta_announced: datetime | None = None
    eta_first: datetime | None = None  # the first ETA announced (migration 0014)
    created_at: datetime | None = None  # nothing older is a milestone of it


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
    code: str = ""  # its exception code; empty: the one its kind implies (detector_code)


@dataclass(slots=True)
class Outcome:
    """In order: ``items`` are events and milestone writes as they happened."""

    items: list[Event | MilestoneOp] = field(default_factory=list)
    exceptions: list[ExceptionOp] = field(default_factory=list)
    states: dict[str, DeviceState] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.items or self.exceptions or self.states)


# -- what a batch reads ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TrackingView:
    """Everything one batch of tracking reads, loaded before it runs and not changed while
    it runs: the fences, the active shipments, the committed states of the batch's
    devices, and which of the batch's scan references name a shipment that is not
    active (a late scan, not an unknown reference)."""

    index: FenceIndex
    by_device: Mapping[str, Sequence[ShipmentTrack]]
    by_reference: Mapping[str, ShipmentTrack]
    states: Mapping[str, DeviceState] = field(default_factory=dict)
    known_refs: frozenset[str] = frozenset()

    def area_distance_m(self, area: Area, lat: float, lon: float) -> float:
        if area.fence_id is None:
            return max(0.0, haversine_m(lat, lon, area.lat, area.lon) - area.radius_m)
        i = self.index.by_id.get(area.fence_id)
        return math.inf if i is None else self.index.distance_m(i, lat, lon)

    def area_anchor(self, area: Area) -> tuple[float, float] | None:
        """A place's point: a circle's centre, a geofence's anchor (None: no such fence)."""
        if area.fence_id is None:
            return area.lat, area.lon
        i = self.index.by_id.get(area.fence_id)
        return None if i is None else self.index.anchor(i)


def count_types(outcome: Outcome) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for item in outcome.items:
        counts[item.type if isinstance(item, Event) else item.event.type] += 1
    return counts


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")
