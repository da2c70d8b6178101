"""The state machines of tracking, pure and small: each takes its state, one observation
and its time, and returns the new state and what changed. No clocks, no I/O; times are
the fixes' own (so replaying the same fixes gives the same answers).

- ``step_area``: inside/outside of a fence or a shipment's place, debounced twice:
  a fix within its accuracy of the edge (``EDGE``) says nothing, and a change is
  confirmed only once the new side has held for ``debounce`` (a fix on the old side in
  between cancels it). The change is dated by the first fix on the new side.
- ``step_limit``: a sensor reading outside a range for longer than ``for_s`` starts an
  excursion; the first reading back inside resolves it.
- ``step_outside``: outside a route corridor for longer than a grace time (same shape).
- ``step_stop``: stationary (within a radius of where it stopped) for longer than a
  threshold.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import msgspec

from shiptrack.shipments import Limit

IN, EDGE, OUT = 2, 1, 0  # how a fix lies relative to an area
Change = Literal["enter", "exit", "dwell", "start", "resolve"]


class AreaState(msgspec.Struct, omit_defaults=True, kw_only=True):
    inside: bool = False
    since: datetime | None = None  # when the current side was entered
    pending: datetime | None = None  # first fix on the other side, not yet confirmed
    dwelled: bool = False

    def is_default(self) -> bool:
        return not self.inside and self.pending is None


def step_area(
    st: AreaState, cls: int, ts: datetime, debounce: timedelta, dwell: timedelta | None,
) -> tuple[AreaState, list[tuple[Change, datetime]]]:
    changes: list[tuple[Change, datetime]] = []
    crossing = cls == (OUT if st.inside else IN)
    staying = cls == (IN if st.inside else OUT)
    if crossing:
        first = st.pending or ts
        if ts - first >= debounce:
            changes.append(("exit" if st.inside else "enter", first))
            st = AreaState(inside=not st.inside, since=first)
        elif st.pending is None:
            st = AreaState(inside=st.inside, since=st.since, pending=first, dwelled=st.dwelled)
    elif staying and st.pending is not None:
        st = AreaState(inside=st.inside, since=st.since, dwelled=st.dwelled)
    if (st.inside and not st.dwelled and st.pending is None and dwell is not None
            and st.since is not None and ts - st.since >= dwell):
        changes.append(("dwell", st.since + dwell))
        st = AreaState(inside=True, since=st.since, dwelled=True)
    return st, changes


class Spell(msgspec.Struct, omit_defaults=True, kw_only=True):
    """A condition that must last to count: a sensor excursion, a route deviation."""

    since: datetime | None = None  # first observation of the condition
    active: bool = False  # confirmed (the start event was sent)
    peak: float | None = None  # worst reading / largest distance seen

    def is_default(self) -> bool:
        return self.since is None and not self.active


def step_spell(
    st: Spell, bad: bool, ts: datetime, hold: timedelta, value: float | None = None,
    worse: bool = True,
) -> tuple[Spell, Change | None]:
    """``bad`` observations for at least ``hold`` start it; one good one resolves it.
    ``worse``: whether ``value`` is worse than the peak so far (kept as the peak)."""
    if not bad:
        return Spell(), ("resolve" if st.active else None)
    since = st.since or ts
    peak = value if st.peak is None or (value is not None and worse) else st.peak
    if not st.active and ts - since >= hold:
        return Spell(since=since, active=True, peak=peak), "start"
    return Spell(since=since, active=st.active, peak=peak), None


def step_limit(st: Spell, limit: Limit, value: float, ts: datetime) -> tuple[Spell, Change | None]:
    bad = limit.outside(value)
    worse = st.peak is None or _distance_out(limit, value) > _distance_out(limit, st.peak)
    return step_spell(st, bad, ts, timedelta(seconds=limit.for_s), value, worse)


def _distance_out(limit: Limit, value: float) -> float:
    if limit.min is not None and value < limit.min:
        return limit.min - value
    if limit.max is not None and value > limit.max:
        return value - limit.max
    return 0.0


class StopState(msgspec.Struct, omit_defaults=True, kw_only=True):
    lat: float
    lon: float
    since: datetime
    active: bool = False


def step_stop(
    st: StopState | None, lat: float, lon: float, ts: datetime, moved_m: float | None,
    radius_m: float, threshold: timedelta, eligible: bool,
) -> tuple[StopState, Change | None]:
    """``moved_m``: distance from the stop's anchor (None: no stop yet). ``eligible``:
    whether a stop here may count (not inside a known place)."""
    if st is None or moved_m is None or moved_m > radius_m:
        change: Change | None = "resolve" if st is not None and st.active else None
        return StopState(lat=lat, lon=lon, since=ts), change
    if not st.active and eligible and ts - st.since >= threshold:
        return StopState(lat=st.lat, lon=st.lon, since=st.since, active=True), "start"
    return st, None
