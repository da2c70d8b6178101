"""GPS outliers and the live position: pure logic over fixes sorted by time.

A fix newer than the device's live position that implies a speed above the limit from
it is an outlier: stored, flagged, never the live position. Fixes older than the live
position are stored as history and never move it backwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from shiptrack.fix import Fix

EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class LastFix:
    ts: datetime
    lat: float
    lon: float


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def advance(
    fixes: list[Fix], last: dict[str, LastFix], max_speed_mps: float
) -> tuple[list[Fix], dict[str, LastFix]]:
    """Flag outliers in place; return the fixes that advance live positions, in ts order,
    and the new live position per device (to apply once the batch is committed)."""
    moved: dict[str, LastFix] = {}
    live: list[Fix] = []
    for fix in sorted(fixes, key=lambda f: f.ts):
        prev = moved.get(fix.device_id) or last.get(fix.device_id)
        if prev is not None:
            if fix.ts <= prev.ts:
                continue
            dt = (fix.ts - prev.ts).total_seconds()
            if haversine_m(prev.lat, prev.lon, fix.lat, fix.lon) > max_speed_mps * dt:
                fix.outlier = True
                continue
        moved[fix.device_id] = LastFix(fix.ts, fix.lat, fix.lon)
        live.append(fix)
    return live, moved
