"""A deterministic fleet model: trucks driving legs between hubs, emitting SPEC fixes.

Pure: no wall clock, no I/O. Time is passed in (``Fleet.step(now)``); every random draw
comes from a per-vehicle ``random.Random`` seeded from the fleet seed and the vehicle's
index, so the same seed and the same timestamps give the same fixes.

Each vehicle cycles through three phases::

    DRIVING --(random short stop)--> STOPPING --(speed 0)--> DWELLING --(timer)--> DRIVING
    DRIVING --(reaches end of leg, braking)--> DWELLING at the hub --> next leg

Speed follows a cruise target (60-100 km/h, re-drawn every few minutes) with bounded
acceleration and braking, so consecutive fixes imply the speed they report.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import datetime
from enum import Enum

from simulator.cities import BERLIN, Hub
from simulator.geo import LatLon, offset_m
from simulator.payload import Fix, PositionPayload, format_ts
from simulator.routes import hubs_near, make_leg

MAX_SUBSTEP_S = 1.0
CRUISE_MS = (60 / 3.6, 100 / 3.6)
TARGET_HOLD_S = (30.0, 240.0)
ACCEL_MS2 = 0.8
BRAKE_MS2 = 1.5
BRAKE_PLAN_MS2 = 0.8 * BRAKE_MS2  # plan for gentler braking than the limit: margin
STOP_RATE_PER_S = 1 / 1800  # a short stop (traffic, lights) every ~30 min of driving
STOP_DWELL_S = (10.0, 90.0)
HUB_DWELL_S = (60.0, 300.0)
REVERSE_PROBABILITY = 0.3
RECHARGE_BELOW = 0.2
GPS_ERROR_TAU_S = 60.0


class Phase(Enum):
    DRIVING = "driving"
    STOPPING = "stopping"
    DWELLING = "dwelling"


class Vehicle:
    """One tracker on one truck. ``advance_to(now)`` moves it and returns its fix."""

    def __init__(self, device_id: str, rng: random.Random, hubs: Sequence[Hub]) -> None:
        if len(hubs) < 2:
            raise ValueError("a vehicle needs at least two hubs")
        self.device_id = device_id
        self.hubs = tuple(hubs)
        self._rng = rng
        origin, destination = rng.sample(self.hubs, 2)
        self.leg = make_leg(rng, origin, destination)
        self.along_m = rng.uniform(0.0, self.leg.path.length_m)
        self.odometer_m = 0.0
        self.phase = Phase.DRIVING
        self.target_ms = rng.uniform(*CRUISE_MS)
        self.speed_ms = self.target_ms
        self._target_hold_s = rng.uniform(*TARGET_HOLD_S)
        self._dwell_s = 0.0
        self._at_leg_end = False
        self.heading = self.leg.path.locate(self.along_m)[1]
        self.battery = rng.uniform(0.6, 1.0)
        self._drain_per_s = rng.uniform(0.005, 0.02) / 3600.0
        self._setpoint_c = 4.0 if rng.random() < 0.4 else rng.uniform(12.0, 22.0)
        self.temperature_c = self._setpoint_c + rng.gauss(0.0, 0.5)
        self.humidity_pct = rng.uniform(40.0, 70.0)
        self._alt_base = rng.uniform(20.0, 300.0)
        self._accuracy_base = rng.uniform(3.0, 8.0)
        self._gps_offset = (0.0, 0.0)
        self.seq = 0
        self.last_time: datetime | None = None

    @property
    def position(self) -> LatLon:
        """The true position (fixes add GPS noise to it)."""
        return self.leg.path.locate(self.along_m)[0]

    def advance_to(self, now: datetime) -> PositionPayload:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        elapsed = math.inf
        if self.last_time is not None:
            elapsed = (now - self.last_time).total_seconds()
            if elapsed < 0:
                raise ValueError("time must not go backwards")
            left = elapsed
            while left > 0:
                h = min(MAX_SUBSTEP_S, left)
                self._substep(h)
                left -= h
        self.last_time = now
        return self._fix(now, elapsed)

    def _substep(self, h: float) -> None:
        self._sensors(h)
        self.battery = max(0.0, self.battery - self._drain_per_s * h)
        if self.phase is Phase.DWELLING:
            self._dwell(h)
        else:
            self._drive(h)

    def _dwell(self, h: float) -> None:
        self._dwell_s -= h
        if self._dwell_s > 0:
            return
        if self._at_leg_end:
            self._next_leg()
        self.phase = Phase.DRIVING
        self.target_ms = self._rng.uniform(*CRUISE_MS)

    def _drive(self, h: float) -> None:
        if self.phase is Phase.DRIVING:
            self._target_hold_s -= h
            if self._target_hold_s <= 0:
                self.target_ms = self._rng.uniform(*CRUISE_MS)
                self._target_hold_s = self._rng.uniform(*TARGET_HOLD_S)
            if self._rng.random() < STOP_RATE_PER_S * h:
                self.phase = Phase.STOPPING
        desired = 0.0 if self.phase is Phase.STOPPING else self.target_ms
        remaining = self.leg.path.length_m - self.along_m
        desired = min(desired, math.sqrt(2 * BRAKE_PLAN_MS2 * max(0.0, remaining)))
        before = self.speed_ms
        change = max(-BRAKE_MS2 * h, min(ACCEL_MS2 * h, desired - before))
        self.speed_ms = max(0.0, before + change)
        moved = (before + self.speed_ms) / 2 * h
        if moved >= remaining or remaining <= 1.0:
            self._arrive(remaining)
            return
        self.along_m += moved
        self.odometer_m += moved
        if self.phase is Phase.STOPPING and self.speed_ms < 0.05:
            self._start_dwell(STOP_DWELL_S, at_leg_end=False)

    def _arrive(self, remaining: float) -> None:
        self.along_m = self.leg.path.length_m
        self.odometer_m += max(0.0, remaining)
        self._start_dwell(HUB_DWELL_S, at_leg_end=True)
        if self.battery < RECHARGE_BELOW:
            self.battery = 1.0  # tracker swapped or charged at the hub

    def _start_dwell(self, bounds: tuple[float, float], *, at_leg_end: bool) -> None:
        self.speed_ms = 0.0
        self.phase = Phase.DWELLING
        self._dwell_s = self._rng.uniform(*bounds)
        self._at_leg_end = at_leg_end

    def _next_leg(self) -> None:
        here = self.leg.destination
        if self._rng.random() < REVERSE_PROBABILITY:
            self.leg = self.leg.reversed()
        else:
            choices = [h for h in self.hubs if h != here]
            self.leg = make_leg(self._rng, here, self._rng.choice(choices))
        self.along_m = 0.0
        self._at_leg_end = False
        self.heading = self.leg.path.locate(0.0)[1]

    def _sensors(self, h: float) -> None:
        rng, k = self._rng, h / 600.0
        self.temperature_c += k * (self._setpoint_c - self.temperature_c)
        self.temperature_c += rng.gauss(0.0, 0.02 * math.sqrt(h))
        self.humidity_pct += k * (55.0 - self.humidity_pct) + rng.gauss(0.0, 0.05 * math.sqrt(h))
        self.humidity_pct = max(5.0, min(100.0, self.humidity_pct))

    def _gps_error(self, elapsed_s: float) -> tuple[float, float]:
        """GPS error (north, east metres): slowly varying, as real receivers' errors are.

        An Ornstein-Uhlenbeck walk with a std of half the base accuracy per axis, so about
        86 % of fixes lie within their ``accuracy`` of the truth, while consecutive fixes
        jitter little and still imply the speed they report.
        """
        sigma = self._accuracy_base / 2
        rho = math.exp(-elapsed_s / GPS_ERROR_TAU_S)
        jitter = sigma * math.sqrt(1 - rho * rho)
        north, east = self._gps_offset
        self._gps_offset = (
            rho * north + self._rng.gauss(0.0, jitter),
            rho * east + self._rng.gauss(0.0, jitter),
        )
        return self._gps_offset

    def _fix(self, now: datetime, elapsed_s: float) -> PositionPayload:
        rng = self._rng
        accuracy = round(self._accuracy_base * rng.uniform(0.9, 1.3), 1)
        true_position, bearing = self.leg.path.locate(self.along_m)
        lat, lon = offset_m(true_position, *self._gps_error(elapsed_s))
        moving = self.speed_ms > 0.0
        if moving:  # standing still, a tracker keeps reporting its last course
            self.heading = bearing
        speed = max(0.0, self.speed_ms + rng.gauss(0.0, 0.2)) if moving else 0.0
        heading = (self.heading + (rng.gauss(0.0, 0.5) if moving else 0.0)) % 360.0
        alt = self._alt_base + 25.0 * math.sin(self.odometer_m / 9000.0) + rng.gauss(0.0, accuracy)
        self.seq += 1
        return {
            "ts": format_ts(now),
            "lat": round(lat, 7),
            "lon": round(lon, 7),
            "speed": round(speed, 2),
            "heading": round(heading, 1) % 360.0,
            "accuracy": accuracy,
            "alt": round(alt, 1),
            "battery": round(self.battery, 3),
            "seq": self.seq,
            "sensors": {
                "temperature_c": round(self.temperature_c, 2),
                "humidity_pct": round(self.humidity_pct, 1),
            },
        }


class Fleet:
    """``n`` vehicles ``sim-0001``... driving between hubs within ``spread_km`` of ``origin``."""

    def __init__(
        self,
        n: int,
        seed: int = 1,
        origin: LatLon = BERLIN,
        spread_km: float = 600.0,
        hubs: Sequence[Hub] | None = None,
    ) -> None:
        if n < 1:
            raise ValueError("a fleet needs at least one vehicle")
        self.seed = seed
        if hubs is None:
            hubs = hubs_near(origin, spread_km, random.Random(f"shiptrack-sim:{seed}:hubs"))
        self.hubs = tuple(hubs)
        self.vehicles = [
            Vehicle(f"sim-{i:04d}", random.Random(f"shiptrack-sim:{seed}:{i}"), self.hubs)
            for i in range(1, n + 1)
        ]

    @property
    def device_ids(self) -> list[str]:
        return [v.device_id for v in self.vehicles]

    def advance(self, now: datetime) -> list[Fix]:
        """Move every vehicle to ``now`` and return one fix per vehicle, in fleet order."""
        return [Fix(v.device_id, v.advance_to(now)) for v in self.vehicles]

    def step(self, now: datetime) -> list[PositionPayload]:
        """Like ``advance`` but only the payloads (in ``device_ids`` order)."""
        return [fix.payload for fix in self.advance(now)]
