"""Small spherical helpers for the ETA code: scalar distances and points between two fixes.

Pure ``math`` (no numpy): these run once or twice per fix, where numpy's per-call overhead
would cost more than the arithmetic.
"""

from __future__ import annotations

import math

from shiptrack.geodesy import EARTH_RADIUS_M, M_PER_DEG

__all__ = ["EARTH_RADIUS_M", "M_PER_DEG", "between", "haversine_m", "wrap_lon"]


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def wrap_lon(dlon: float) -> float:
    """A longitude difference the short way round, in [-180, 180)."""
    return (dlon + 180.0) % 360.0 - 180.0


def between(lat1: float, lon1: float, lat2: float, lon2: float, f: float) -> tuple[float, float]:
    """The point a fraction ``f`` of the way from 1 to 2, linear in lat/lon (the short way
    across the antimeridian): exact enough for pieces of a few tens of kilometres, which is
    all it is used for (picking the area cell a piece lies in)."""
    lon = lon1 + f * wrap_lon(lon2 - lon1)
    return lat1 + f * (lat2 - lat1), wrap_lon(lon)
