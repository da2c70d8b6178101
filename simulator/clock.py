"""Simulated time against the wall clock: speed-up that never runs into the future.

Ingest rejects a fix whose ``ts`` is more than 5 minutes ahead of its own clock (SPEC).
With ``--speed 60`` an hour of simulated time passes in a wall minute, so a simulated
clock started *now* would be hours in the future by the end. Instead it starts in the
past (``start_in_past``): early enough that the planned span ends at the wall clock. Tick
``k`` (simulated ``start + k * interval``) is published at wall time
``max(k * interval / speed, start + k * interval - real_start)`` after the start: at the
speed-up while the simulated clock is behind the wall clock, and at 1x once it has
caught up, so a timestamp is never later than the moment it is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta


def start_in_past(now: datetime, speed: float, span_s: float) -> datetime:
    """Where to start so that ``span_s`` simulated seconds end at the wall clock."""
    if speed <= 1.0:
        return now
    return now - timedelta(seconds=span_s * (1.0 - 1.0 / speed))


@dataclass
class SimClock:
    start: datetime
    interval_s: float
    speed: float
    real_start: datetime
    until: Callable[[], bool] | None = None

    def sim_time(self, tick: int) -> datetime:
        return self.start + timedelta(seconds=tick * self.interval_s)

    def wall_offset(self, tick: int) -> float:
        """Wall seconds after the start at which tick ``tick`` is due."""
        sped_up = tick * self.interval_s / self.speed
        caught_up = (self.sim_time(tick) - self.real_start).total_seconds()
        return max(sped_up, caught_up)

    def finished(self, ticks_done: int) -> bool:
        return self.until is not None and self.until()
