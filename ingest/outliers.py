"""GPS outliers and the live position: pure logic over fixes sorted by time.

A fix newer than the device's live position that implies a speed above the limit from
it is an outlier: stored, flagged, never the live position. Fixes older than the live
position are stored as history and never move it backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shiptrack.eta.geo import haversine_m
from shiptrack.fix import Fix


@dataclass(frozen=True, slots=True)
class LastFix:
    ts: datetime
    lat: float
    lon: float


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
