"""A deterministic fleet: trucks (``vehicle``) with trackers (``tracker``), sensors and faults.

Pure: no wall clock, no I/O. Time is passed in (``Fleet.tick(now)``); every random draw
comes from per-device ``random.Random`` streams seeded from the fleet seed and the
device's index (one stream each for the truck, its sensors, its tracker and its faults),
so the same seed and the same timestamps give the same bytes.

``tick(now)`` returns the encoded MQTT messages (faults applied) of every device whose
tracker takes a fix at ``now``; ``step(now)`` returns the clean payloads instead.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import msgspec

from shiptrack.topics import device_topic
from simulator.cities import BERLIN, Hub
from simulator.faults import FaultConfig, FaultInjector
from simulator.geo import LatLon
from simulator.payload import PositionPayload
from simulator.routes import hubs_near, leg_length_m
from simulator.sensors import SensorConfig, SensorKit
from simulator.tracker import Tracker, TrackerConfig, owntracks_topic, skewed, to_owntracks
from simulator.truth import TruthLog
from simulator.vehicle import Phase, Planner, Vehicle

__all__ = ["Fix", "Fleet", "FleetConfig", "Message", "Phase", "Vehicle"]


class Fix(NamedTuple):
    """A clean payload and the device it belongs to (the topic carries the id)."""

    device_id: str
    payload: PositionPayload


class Message(NamedTuple):
    """One MQTT message: topic (without the deployment prefix) and payload bytes."""

    topic: str
    payload: bytes


@dataclass(frozen=True)
class FleetConfig:
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    sensors: SensorConfig = field(default_factory=SensorConfig)
    hub_dwell_s: tuple[float, float] = (15 * 60.0, 45 * 60.0)
    start_at_hub: bool = False  # else anywhere along a first leg, already driving
    trips: int | None = None  # trips per truck, then it parks (None: forever)
    max_leg_km: float | None = None  # destinations at most this far by road
    device_prefix: str = "sim-"


def random_planner(hubs: Sequence[Hub], trips: int | None, max_leg_km: float | None) -> Planner:
    """Next destination: any other hub within ``max_leg_km`` by road (the nearest if none
    is), or None (park) after ``trips`` trips."""

    def plan(rng: random.Random, here: Hub, trip: int) -> Hub | None:
        if trips is not None and trip > trips:
            return None
        choices = [h for h in hubs if h != here]
        if max_leg_km is not None:
            near = [h for h in choices if leg_length_m(here, h) <= max_leg_km * 1000]
            choices = near or [min(choices, key=lambda h: leg_length_m(here, h))]
        return rng.choice(choices)

    return plan


class Device:
    """A truck with its tracker, sensors and faults."""

    def __init__(self, index: int, seed: int, hubs: Sequence[Hub], config: FleetConfig,
                 truth: TruthLog, planner: Planner) -> None:
        device_id = f"{config.device_prefix}{index:04d}"
        key = f"shiptrack-sim:{seed}:{index}"
        self.device_id = device_id
        self.sensors = SensorKit(device_id, random.Random(f"{key}:sensors"), config.sensors,
                                 truth)
        rng = random.Random(key)
        first = None
        if config.start_at_hub:
            origin = rng.choice(hubs)
            first = (origin, planner(rng, origin, 1) or rng.choice([h for h in hubs
                                                                    if h != origin]))
        self.vehicle = Vehicle(device_id, rng, hubs, self.sensors, truth, planner,
                               config.hub_dwell_s, at_hub=config.start_at_hub, first=first)
        self.tracker = Tracker(device_id, random.Random(f"{key}:tracker"), config.tracker,
                               truth)
        self.faults = FaultInjector(device_id, random.Random(f"{key}:faults"), config.faults,
                                    truth)
        owntracks = config.tracker.format == "owntracks"
        self.topic = owntracks_topic(device_id) if owntracks else device_topic(device_id)

    def fix(self, now: datetime) -> PositionPayload | None:
        """Advance to ``now``; the fix the tracker takes then, if one is due."""
        vehicle = self.vehicle
        vehicle.advance_to(now)
        assert vehicle.t is not None
        if vehicle.battery <= 0.0 or not self.tracker.due(vehicle.t, vehicle.moving):
            return None
        if self.faults.reboots(vehicle.t):
            self.tracker.seq = 0
            return None
        return self.tracker.fix(vehicle, skewed(now, self.faults.skew_s))


class Fleet:
    """``n`` devices ``sim-0001``... driving between hubs within ``spread_km`` of ``origin``."""

    def __init__(self, n: int, seed: int = 1, origin: LatLon = BERLIN, spread_km: float = 600.0,
                 hubs: Sequence[Hub] | None = None, config: FleetConfig | None = None,
                 first_index: int = 1) -> None:
        if n < 1:
            raise ValueError("a fleet needs at least one vehicle")
        self.seed = seed
        self.config = config or FleetConfig()
        if hubs is None:
            hubs = hubs_near(origin, spread_km, random.Random(f"shiptrack-sim:{seed}:hubs"))
        self.hubs = tuple(hubs)
        self.truth = TruthLog()
        planner = random_planner(self.hubs, self.config.trips, self.config.max_leg_km)
        self.devices = [Device(i, seed, self.hubs, self.config, self.truth, planner)
                        for i in range(first_index, first_index + n)]
        self.vehicles = [d.vehicle for d in self.devices]
        self._encoder = msgspec.json.Encoder()

    @property
    def device_ids(self) -> list[str]:
        return [d.device_id for d in self.devices]

    def advance(self, now: datetime) -> list[Fix]:
        """Move every device to ``now``; the clean fixes taken (no faults applied)."""
        fixes = []
        for device in self.devices:
            payload = device.fix(now)
            if payload is not None:
                fixes.append(Fix(device.device_id, payload))
        return fixes

    def step(self, now: datetime) -> list[PositionPayload]:
        """Like ``advance`` but only the payloads (in ``device_ids`` order)."""
        return [fix.payload for fix in self.advance(now)]

    def tick(self, now: datetime) -> list[Message]:
        """Move every device to ``now``; the messages that leave the devices (faults on)."""
        out: list[Message] = []
        owntracks = self.config.tracker.format == "owntracks"
        for device in self.devices:
            payload = device.fix(now)
            if payload is None:
                continue
            body: Any = to_owntracks(device.device_id, payload) if owntracks else payload
            assert device.vehicle.t is not None
            for raw in device.faults.process(device.vehicle.t, body, self._encoder.encode):
                out.append(Message(device.topic, raw))
        return out

    def done(self, grace_s: float = 0.0) -> bool:
        """Every truck has finished its trips and been parked for ``grace_s`` seconds."""
        return all(v.parked_at is not None and v.t is not None and v.t - v.parked_at >= grace_s
                   for v in self.vehicles)
