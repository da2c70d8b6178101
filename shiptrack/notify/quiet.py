"""Quiet hours: when a message may go out in the recipient's zone (pure; "now" is given).

``quiet_hours`` ``{"start": "22:00", "end": "07:00"}`` is a daily window of local wall
time, ``start`` included, ``end`` excluded; it may wrap midnight. Daylight-saving days are
handled by the zone: the window's end is the first instant whose local time is ``end``
or later (a skipped hour moves it forward, never makes it vanish).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def in_window(local: time, start: time, end: time) -> bool:
    if start <= end:
        return start <= local < end
    return local >= start or local < end


def release_at(now: datetime, zone: str, start: time | None, end: time | None) -> datetime:
    """``now`` outside quiet hours, else the (UTC) instant they end."""
    if start is None or end is None or start == end:
        return now
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    if not in_window(local.time().replace(tzinfo=None), start, end):
        return now
    day = local.date() if local.time().replace(tzinfo=None) < end else (
        local.date() + timedelta(days=1))
    return max(first_at_or_after(datetime.combine(day, end), tz), now)


def first_at_or_after(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first UTC instant whose local time in ``tz`` is ``wall`` or later: ``wall``
    itself (the earlier one when the clocks go back), or the end of the gap when the
    clocks go forward over it."""
    early = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if early.astimezone(tz).replace(tzinfo=None) == wall:
        return early
    late = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)  # in a gap: the two differ
    step = min(early, late)
    while step.astimezone(tz).replace(tzinfo=None) < wall and step < max(early, late):
        step += timedelta(minutes=1)
    return step


def parse_hhmm(value: str) -> time:
    """``HH:MM`` (24 h) -> time; ValueError otherwise."""
    match = HHMM.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not HH:MM (00:00 to 23:59)")
    return time(int(match.group(1)), int(match.group(2)))
