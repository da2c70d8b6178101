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
    wall = datetime.combine(day, end)
    # fold=0 on an ambiguous time (the earlier one); a non-existent one is normalised
    # forward by the round trip through UTC
    candidate = wall.replace(tzinfo=tz).astimezone(UTC)
    if candidate.astimezone(tz).replace(tzinfo=None) < wall:
        candidate += timedelta(hours=1)
    return max(candidate, now)


def parse_hhmm(value: str) -> time:
    """``HH:MM`` (24 h) -> time; ValueError otherwise."""
    match = HHMM.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not HH:MM (00:00 to 23:59)")
    return time(int(match.group(1)), int(match.group(2)))
