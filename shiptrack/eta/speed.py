"""What a device's own fixes say: its recent moving speed, its stops, its driving hours.

``Motion`` is the per-device state (a ``msgspec.Struct``: small, serialisable), advanced
by ``observe`` with each new fix:

- A step between two fixes is *still* when the device moved under ``STILL_MS`` on
  average (GPS noise of a parked truck stays far below it; a jam at walking pace stays
  above it). Consecutive still steps are one stop; it ends with the next moving step.
  A step that moved, longer than ``MAX_STEP_S`` and than ``GAP_FACTOR`` times the
  device's usual step, is a *gap* in the fixes: neither moving nor still (``_gap``). A
  tracker that reports every 15 minutes has steps of 15 minutes, not gaps.
- Recent speed: exponentially decayed sums of metres and seconds over moving steps only
  (time constant ``TAU_S`` of moving time), next to the seconds the speed profile would
  have expected for the same metres. Their ratio (``speed_factor``) says how much faster
  than usual the device has been going lately: a jam, a slow driver, an empty road.
- Driving clocks: moving time since the last break (a stop of at least
  ``rests.BREAK_S``) and since the last rest (at least ``rests.REST_S``), which is what
  drivers' hours rules (EU 561/2006: a break after 4.5 h, a daily rest after 9 h) run on.

``observe`` returns the ``Step`` it saw, which is all the learning side needs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from shiptrack.eta.geo import between, haversine_m
from shiptrack.eta.rests import BREAK_S, REST_S

STILL_MS = 1.0  # average speed under which a step is standing still
TAU_S = 15 * 60.0  # memory of the recent-speed average, in moving seconds
MAX_STEP_S = 600.0  # a longer step between fixes may be a gap (trips are cut at 10 min)
GAP_FACTOR = 5.0  # ... when it is also this many times the device's usual step
USUAL_ALPHA = 0.1  # weight of a new step in the device's usual step
MIN_RECENT_S = 120.0  # moving seconds needed before the recent speed counts at all
TAU_LONG_S = 3 * 3600.0  # memory of the long-run moving pace, in moving seconds

PaceAt = Callable[[float, float, float], float]  # (lat, lon, ts) -> s/m while moving


class Motion(msgspec.Struct, kw_only=True):
    """Per device. Times are epoch seconds."""

    ts: float | None = None
    lat: float = 0.0
    lon: float = 0.0
    moving_m: float = 0.0  # decayed
    moving_s: float = 0.0  # decayed
    expected_s: float = 0.0  # decayed: what the profile expected for moving_m
    long_m: float = 0.0  # moving metres and seconds over the last hours (TAU_LONG_S)
    long_s: float = 0.0
    still_since: float | None = None
    since_break_s: float = 0.0  # moving seconds since the last break (or since we know)
    since_rest_s: float = 0.0  # moving seconds since the last daily rest
    # whether the clocks count from a break / rest seen, or only from the first fix seen
    break_seen: bool = False
    rest_seen: bool = False
    usual_step_s: float = 0.0  # the device's usual seconds between fixes (gaps excluded)

    @property
    def speed_factor(self) -> float:
        """Recent speed over what the profile expected there (1.0: as usual / unknown)."""
        if self.moving_s < MIN_RECENT_S or self.expected_s <= 0.0:
            return 1.0
        weight = min(1.0, self.moving_s / TAU_S)
        return 1.0 + weight * (self.expected_s / self.moving_s - 1.0)

    @property
    def long_pace(self) -> float | None:
        """Seconds per metre moving over the last hours (None before ``MIN_RECENT_S``)."""
        if self.long_s < MIN_RECENT_S or self.long_m <= 0.0:
            return None
        return self.long_s / self.long_m

    @property
    def long_weight(self) -> float:
        """How much of the long-run memory is filled (0 at the first fix, 1 after hours)."""
        return min(1.0, self.long_s / TAU_LONG_S)

    @property
    def recent_kmh(self) -> float | None:
        """The smoothed moving speed (stops excluded), when there is enough of it."""
        if self.moving_s < MIN_RECENT_S:
            return None
        return 3.6 * self.moving_m / self.moving_s

    def still_for(self, ts: float) -> float:
        """How long the device has been standing at ``ts`` (0 while moving)."""
        return 0.0 if self.still_since is None else max(0.0, ts - self.still_since)


@dataclass(frozen=True, slots=True)
class Stop:
    start: float
    seconds: float
    lat: float
    lon: float
    since_break_s: float  # the clocks when it began
    since_rest_s: float
    break_seen: bool
    rest_seen: bool


@dataclass(frozen=True, slots=True)
class Step:
    """What happened between two fixes."""

    ts: float  # midpoint time
    lat: float  # midpoint
    lon: float
    metres: float
    seconds: float
    moving: bool
    since_break_s: float  # the clocks before the step (moving steps advance them)
    since_rest_s: float
    break_seen: bool
    rest_seen: bool
    stop: Stop | None = None  # the stop this moving step ended


def observe(motion: Motion, ts: float, lat: float, lon: float, pace_at: PaceAt) -> Step | None:
    """Advance ``motion`` to a new fix; None for a fix not newer than the last one."""
    if motion.ts is None:
        motion.ts, motion.lat, motion.lon = ts, lat, lon
        return None
    dt = ts - motion.ts
    if dt <= 0.0:
        return None
    metres = haversine_m(motion.lat, motion.lon, lat, lon)
    mid_lat, mid_lon = between(motion.lat, motion.lon, lat, lon, 0.5)
    mid_ts = motion.ts + dt / 2
    clocks = (motion.since_break_s, motion.since_rest_s, motion.break_seen, motion.rest_seen)
    moving = metres / dt >= STILL_MS
    usual = motion.usual_step_s
    if moving and usual > 0.0 and dt > max(MAX_STEP_S, GAP_FACTOR * usual):
        return _gap(motion, ts, lat, lon, metres, dt, mid_ts, mid_lat, mid_lon, clocks)
    motion.usual_step_s = dt if usual <= 0.0 else usual + USUAL_ALPHA * (dt - usual)
    stop = None
    if not moving:
        if motion.still_since is None:
            motion.still_since = motion.ts
    else:
        stop = _end_stop(motion)
        decay = math.exp(-dt / TAU_S)
        motion.moving_m = motion.moving_m * decay + metres
        motion.moving_s = motion.moving_s * decay + dt
        motion.expected_s = motion.expected_s * decay + metres * pace_at(mid_lat, mid_lon, mid_ts)
        decay = math.exp(-dt / TAU_LONG_S)
        motion.long_m = motion.long_m * decay + metres
        motion.long_s = motion.long_s * decay + dt
        motion.since_break_s += dt
        motion.since_rest_s += dt
    motion.ts, motion.lat, motion.lon = ts, lat, lon
    return Step(mid_ts, mid_lat, mid_lon, metres, dt, moving, *clocks, stop=stop)


def _gap(motion: Motion, ts: float, lat: float, lon: float, metres: float, dt: float,
         mid_ts: float, mid_lat: float, mid_lon: float,
         clocks: tuple[float, float, bool, bool]) -> Step:
    """A step over a gap in the fixes (``observe``): how the device got here is not
    known (a tunnel, a device switched off, a taxi's empty run between two fares), so its
    average speed is not the device's pace: the recent speeds and the speed profile do
    not learn from it (the step is not ``moving``), which they did, making the next ETA
    as slow as a gap's average. A stop in progress ends; of the gap, what the distance
    needs at the recent moving speed counts as driving, the rest as standing (a break
    or a rest when long enough)."""
    stop = _end_stop(motion)
    pace = motion.moving_m / motion.moving_s if motion.moving_s > 0.0 else 0.0
    driving = min(dt, metres / pace) if pace > 0.0 else dt
    reset_clocks(motion, dt - driving)
    motion.since_break_s += driving
    motion.since_rest_s += driving
    motion.ts, motion.lat, motion.lon = ts, lat, lon
    return Step(mid_ts, mid_lat, mid_lon, metres, dt, False, *clocks, stop=stop)


def _end_stop(motion: Motion) -> Stop | None:
    if motion.still_since is None or motion.ts is None:
        return None
    seconds = motion.ts - motion.still_since
    stop = Stop(motion.still_since, seconds, motion.lat, motion.lon, motion.since_break_s,
                motion.since_rest_s, motion.break_seen, motion.rest_seen)
    motion.still_since = None
    reset_clocks(motion, seconds)
    return stop


def reset_clocks(motion: Motion, stopped_s: float) -> None:
    """A stop of ``stopped_s`` seconds resets the driving clocks it counts for."""
    if stopped_s >= BREAK_S:
        motion.since_break_s, motion.break_seen = 0.0, True
    if stopped_s >= REST_S:
        motion.since_rest_s, motion.rest_seen = 0.0, True

