"""One truck: drives legs between hubs along roads, stops, rests, and records its trips.

Pure and time-stepped: ``advance_to(now)`` integrates in sub-steps of at most a second
while driving. Every random draw comes from the vehicle's own ``random.Random``.

::

    DRIVING --(traffic light, rest due)--> STOPPING --(speed 0)--> DWELLING --> DRIVING
    DRIVING --(end of leg, braking)--> DWELLING at the hub (doors open) --> next leg

- Speed: a cruise target within the road class's band (``roads.SPEED_BANDS_KMH``),
  re-drawn every few minutes, with bounded acceleration and braking.
- Traffic: jams start at random (more often in cities) and cap the speed at 5-30 km/h
  for 3-25 minutes.
- Driver rules (EU Regulation 561/2006): a 45-minute break after at most 4.5 hours of
  driving (a long enough hub stop counts), an 11-hour rest after 9 hours in a day.
- Trips: a trip runs from leaving one hub to arriving at the next; it is recorded in the
  truth log with its times, route, rests and jams.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from simulator.cities import Hub
from simulator.geo import LatLon
from simulator.roads import SPEED_BANDS_KMH
from simulator.routes import make_leg
from simulator.sensors import SensorKit
from simulator.truth import TruthLog, iso

MAX_SUBSTEP_S = 1.0
CRUISE_SUBSTEP_S = 5.0  # steady at its target speed, far from the hub
MAX_IDLE_SUBSTEP_S = 10.0
TARGET_HOLD_S = (60.0, 300.0)
ACCEL_MS2 = 0.8
BRAKE_MS2 = 1.5
BRAKE_PLAN_MS2 = 0.8 * BRAKE_MS2  # plan for gentler braking than the limit: margin
URBAN_STOP_RATE_PER_S = 1 / 240  # traffic lights and junctions in town
JAM_RATE_PER_H = {"motorway": 0.25, "trunk": 0.3, "urban": 1.0}
JAM_KMH = (5.0, 30.0)
JAM_S = (180.0, 1500.0)
STOP_DWELL_S = (10.0, 60.0)
BREAK_AFTER_S = (4.0 * 3600, 4.5 * 3600)
BREAK_S = (45 * 60.0, 55 * 60.0)
DAILY_DRIVING_S = 9 * 3600.0
DAILY_REST_S = (11 * 3600.0, 12 * 3600.0)
DOOR_OPEN_S = (5 * 60.0, 15 * 60.0)
RECHARGE_BELOW = 0.2
URBAN_M_MARGIN = 8_000.0

Planner = Callable[[random.Random, Hub, int], Hub | None]
"""Chooses the next destination from a hub (trip number given), or None: park there."""


class Phase(Enum):
    DRIVING = "driving"
    STOPPING = "stopping"
    DWELLING = "dwelling"
    PARKED = "parked"


class Vehicle:
    """A truck on a leg. ``advance_to(now)`` moves it; the tracker reads its state."""

    def __init__(self, device_id: str, rng: random.Random, hubs: Sequence[Hub],
                 sensors: SensorKit, truth: TruthLog, planner: Planner,
                 hub_dwell_s: tuple[float, float], at_hub: bool = False,
                 first: tuple[Hub, Hub] | None = None) -> None:
        if len(hubs) < 2:
            raise ValueError("a vehicle needs at least two hubs")
        self.device_id = device_id
        self.hubs = tuple(hubs)
        self.sensors = sensors
        self._rng = rng
        self._truth = truth
        self._planner = planner
        self._hub_dwell_s = hub_dwell_s
        origin, destination = first or tuple(rng.sample(self.hubs, 2))
        self.leg = make_leg(rng, origin, destination)
        self.along_m = 0.0 if at_hub else rng.uniform(0.0, self.leg.path.length_m)
        self.odometer_m = 0.0
        self.phase = Phase.DRIVING
        self.dwell_kind = ""
        self._dwell_left_s = 0.0
        self._dwell_total_s = 0.0
        self._door_left_s = 0.0
        self.speed_ms = 0.0 if at_hub else self._cruise()
        self.target_ms = self.speed_ms or self._cruise()
        self._target_hold_s = rng.uniform(*TARGET_HOLD_S)
        self._jam_left_s = 0.0
        self._jam_kmh = 0.0
        self._since_break_s = rng.uniform(0.0, 3 * 3600) if not at_hub else 0.0
        self._today_s = self._since_break_s
        self._break_due_s = rng.uniform(*BREAK_AFTER_S)
        self.trips = 0
        self.trip_id = f"{device_id}-t{self.trips + 1}"
        self.trip_partial = not at_hub
        self.trip_points: list[dict[str, float]] = []
        self._departed: float | None = None
        self._events: list[dict[str, Any]] = []
        self._pending_stop = ""
        self.t: float | None = None
        self.parked_at: float | None = None
        self.battery = rng.uniform(0.6, 1.0)
        self._drain_per_s = rng.uniform(0.005, 0.02) / 3600.0
        if at_hub:
            self._start_dwell("hub", rng.uniform(5 * 60.0, 20 * 60.0))
            self._door_left_s = self._dwell_left_s

    # --- state the tracker reads -----------------------------------------------------

    @property
    def position(self) -> LatLon:
        """The true position (fixes add GPS noise to it)."""
        return self.leg.path.locate(self.along_m)[0]

    @property
    def bearing(self) -> float:
        return self.leg.path.locate(self.along_m)[1]

    @property
    def moving(self) -> bool:
        return self.speed_ms > 0.0

    @property
    def road_class(self) -> str:
        return self.leg.route.class_at(self.along_m)

    # --- time ------------------------------------------------------------------------

    def advance_to(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        t = now.timestamp()
        if self.t is None:
            self.t = t
            if not self.trip_partial:
                self._announce()
            return
        if t < self.t:
            raise ValueError("time must not go backwards")
        while self.t < t:
            h = min(t - self.t, self._max_substep())
            if self.phase is Phase.DWELLING:
                h = min(h, max(self._dwell_left_s, 1e-3))
            self._substep(h)
            self.t += h

    def _max_substep(self) -> float:
        if self.phase in (Phase.DWELLING, Phase.PARKED):
            return MAX_SUBSTEP_S if self._door_left_s > 0 else MAX_IDLE_SUBSTEP_S
        steady = (self.phase is Phase.DRIVING and abs(self.speed_ms - self.target_ms) < 0.05
                  and self._jam_left_s <= 0
                  and self.leg.path.length_m - self.along_m > URBAN_M_MARGIN)
        return CRUISE_SUBSTEP_S if steady else MAX_SUBSTEP_S

    def _substep(self, h: float) -> None:
        assert self.t is not None
        self._door_left_s = max(0.0, self._door_left_s - h)
        self.sensors.step(h, self.t, self.moving, self._door_left_s > 0)
        self.battery = max(0.0, self.battery - self._drain_per_s * h)
        if self.phase is Phase.DWELLING:
            self._dwell(h)
        elif self.phase is not Phase.PARKED:
            self._drive(h)

    # --- driving ---------------------------------------------------------------------

    def _cruise(self) -> float:
        low, high = SPEED_BANDS_KMH[self.road_class]
        return self._rng.uniform(low, high) / 3.6

    def _drive(self, h: float) -> None:
        assert self.t is not None
        rng, cls = self._rng, self.road_class
        if self.phase is Phase.DRIVING:
            self._since_break_s += h
            self._today_s += h
            self._target_hold_s -= h
            low, high = SPEED_BANDS_KMH[cls]
            if self._target_hold_s <= 0 or not low <= self.target_ms * 3.6 <= high:
                self.target_ms = self._cruise()
                self._target_hold_s = rng.uniform(*TARGET_HOLD_S)
            self._traffic(h, cls)
            self._maybe_stop(h, cls)
        desired = 0.0 if self.phase is Phase.STOPPING else self.target_ms
        if self._jam_left_s > 0:
            desired = min(desired, self._jam_kmh / 3.6)
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
            kind, self._pending_stop = self._pending_stop, ""
            bounds = {"rest": BREAK_S, "daily_rest": DAILY_REST_S}.get(kind, STOP_DWELL_S)
            self._start_dwell(kind or "traffic", rng.uniform(*bounds))

    def _traffic(self, h: float, cls: str) -> None:
        assert self.t is not None
        if self._jam_left_s > 0:
            self._jam_left_s -= h
            return
        if self._rng.random() < JAM_RATE_PER_H[cls] / 3600.0 * h:
            self._jam_left_s = self._rng.uniform(*JAM_S)
            self._jam_kmh = self._rng.uniform(*JAM_KMH)
            self._events.append({"kind": "jam", "start": iso(self.t),
                                 "duration_s": round(self._jam_left_s),
                                 "kmh": round(self._jam_kmh)})

    def _maybe_stop(self, h: float, cls: str) -> None:
        if self.leg.path.length_m - self.along_m < 2_000:
            return  # close to the hub: no rest now
        if self._today_s >= DAILY_DRIVING_S:
            self._pending_stop = "daily_rest"
        elif self._since_break_s >= self._break_due_s:
            self._pending_stop = "rest"
        elif cls == "urban" and self._rng.random() < URBAN_STOP_RATE_PER_S * h:
            self._pending_stop = "traffic"
        if self._pending_stop:
            self.phase = Phase.STOPPING

    # --- stops and hubs --------------------------------------------------------------

    def _start_dwell(self, kind: str, seconds: float) -> None:
        self.speed_ms = 0.0
        self._dwell_total_s = seconds
        self.phase = Phase.DWELLING
        self.dwell_kind = kind
        self._dwell_left_s = seconds
        self._jam_left_s = 0.0
        if kind in ("rest", "daily_rest") and self.t is not None:
            self._events.append({"kind": kind, "start": iso(self.t), "duration_s": round(seconds)})

    def _dwell(self, h: float) -> None:
        self._dwell_left_s -= h
        if self._dwell_left_s > 1e-6:
            return
        kind = self.dwell_kind
        if kind in ("rest", "daily_rest") or (kind == "hub" and self._dwell_total_s >= BREAK_S[0]):
            self._since_break_s = 0.0
            self._break_due_s = self._rng.uniform(*BREAK_AFTER_S)
        if kind == "daily_rest":
            self._today_s = 0.0
        self.phase = Phase.DRIVING
        self.dwell_kind = ""
        self.target_ms = self._cruise()
        if kind == "hub":
            self._depart()

    def _arrive(self, remaining: float) -> None:
        assert self.t is not None
        self.along_m = self.leg.path.length_m
        self.odometer_m += max(0.0, remaining)
        self._finish_trip()
        self._start_dwell("hub", self._rng.uniform(*self._hub_dwell_s))
        self._door_left_s = self._rng.uniform(*DOOR_OPEN_S)
        if self.battery < RECHARGE_BELOW:
            self.battery = 1.0  # tracker swapped or charged at the hub
        self._plan_next()

    def _plan_next(self) -> None:
        assert self.t is not None
        here = self.leg.destination
        nxt = self._planner(self._rng, here, self.trips + 1)
        if nxt is None:
            self.phase = Phase.PARKED
            self.dwell_kind = "parked"
            self.parked_at = self.t
            return
        self.leg = make_leg(self._rng, here, nxt)
        self.along_m = 0.0
        self.trip_id = f"{self.device_id}-t{self.trips + 1}"
        self.trip_partial = False
        self._announce()

    def _announce(self) -> None:
        """Record the trip about to start (the demo creates its shipment from this)."""
        assert self.t is not None
        here, nxt = self.leg.origin, self.leg.destination
        self._truth.add("trip_planned", self.device_id, self.t, trip_id=self.trip_id,
                        origin=here.name, destination=nxt.name,
                        distance_m=round(self.leg.path.length_m),
                        planned_departure=iso(self.t + self._dwell_left_s),
                        temperature_band=self.sensors.band, route=self.leg.route.geojson())

    def _depart(self) -> None:
        assert self.t is not None
        self._departed = self.t
        self._events = []
        lat, lon = self.position
        self.trip_points = [{"ts": round(self.t, 3), "lat": lat, "lon": lon}]

    def _finish_trip(self) -> None:
        assert self.t is not None
        self.trips += 1
        lat, lon = self.leg.destination.point
        points = [*self.trip_points, {"ts": round(self.t, 3), "lat": lat, "lon": lon}]
        self._truth.add(
            "trip", self.device_id, self.t, trip_id=self.trip_id,
            origin=self.leg.origin.name, destination=self.leg.destination.name,
            departed=iso(self._departed) if self._departed is not None else None,
            arrived=iso(self.t), partial=self._departed is None or self.trip_partial,
            distance_m=round(self.leg.path.length_m), via=list(self.leg.route.via),
            roads=list(self.leg.route.refs), stops=self._events,
            route=self.leg.route.geojson(), points=points,
        )
        self.trip_points = []
        self._departed = None

    def record_fix(self, lat: float, lon: float) -> None:
        """The tracker took a fix (true time, reported position): part of the trip."""
        if self._departed is not None and self.t is not None:
            self.trip_points.append({"ts": round(self.t, 3), "lat": lat, "lon": lon})
