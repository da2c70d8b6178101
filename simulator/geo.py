"""Pure spherical geometry for the simulator: distances, bearings, points along paths.

Points are ``(lat, lon)`` tuples in degrees; distances are metres on a sphere of the
Earth's mean radius (good to ~0.5 %, plenty for simulated trucks).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

from shiptrack.eta.geo import EARTH_RADIUS_M
from shiptrack.eta.geo import haversine_m as _haversine

LatLon = tuple[float, float]



def haversine_m(a: LatLon, b: LatLon) -> float:
    """Great-circle distance between two points, in metres."""
    return _haversine(a[0], a[1], b[0], b[1])


def initial_bearing_deg(a: LatLon, b: LatLon) -> float:
    """Bearing at ``a`` of the great circle towards ``b``: degrees from north, [0, 360)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    dlon = lon2 - lon1
    x = math.sin(dlon) * math.cos(lat2)
    y = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(dlon)
    return math.degrees(math.atan2(x, y)) % 360.0


def destination_point(origin: LatLon, bearing_deg: float, distance_m: float) -> LatLon:
    """The point ``distance_m`` from ``origin`` along the great circle at ``bearing_deg``."""
    lat1, lon1 = map(math.radians, origin)
    theta = math.radians(bearing_deg)
    delta = distance_m / EARTH_RADIUS_M
    sin_lat2 = math.sin(lat1) * math.cos(delta) + math.cos(lat1) * math.sin(delta) * math.cos(theta)
    lat2 = math.asin(max(-1.0, min(1.0, sin_lat2)))
    y = math.sin(theta) * math.sin(delta) * math.cos(lat1)
    x = math.cos(delta) - math.sin(lat1) * sin_lat2
    lon2 = math.radians((math.degrees(lon1 + math.atan2(y, x)) + 540.0) % 360.0 - 180.0)
    return (math.degrees(lat2), math.degrees(lon2))


def intermediate_point(a: LatLon, b: LatLon, fraction: float) -> LatLon:
    """The point ``fraction`` (0..1) of the way from ``a`` to ``b`` on the great circle."""
    if fraction <= 0.0:
        return a
    if fraction >= 1.0:
        return b
    distance = haversine_m(a, b)
    if distance == 0.0:
        return a
    return destination_point(a, initial_bearing_deg(a, b), distance * fraction)


def great_circle_path(a: LatLon, b: LatLon, segments: int) -> list[LatLon]:
    """``segments + 1`` points evenly spaced on the great circle from ``a`` to ``b``."""
    if segments < 1:
        raise ValueError("segments must be at least 1")
    return [intermediate_point(a, b, i / segments) for i in range(segments + 1)]


def offset_m(point: LatLon, north_m: float, east_m: float) -> LatLon:
    """``point`` moved by small distances north and east (local flat approximation)."""
    lat, lon = point
    dlat = math.degrees(north_m / EARTH_RADIUS_M)
    coslat = max(1e-6, math.cos(math.radians(lat)))
    dlon = math.degrees(east_m / (EARTH_RADIUS_M * coslat))
    return (max(-90.0, min(90.0, lat + dlat)), (lon + dlon + 540.0) % 360.0 - 180.0)


def distance_to_segment_m(p: LatLon, a: LatLon, b: LatLon) -> float:
    """Distance from ``p`` to the great-circle segment ``a``-``b``, in metres."""
    d_ap = haversine_m(a, p)
    if d_ap == 0.0:
        return 0.0
    delta = math.radians(initial_bearing_deg(a, p) - initial_bearing_deg(a, b))
    if math.cos(delta) <= 0.0:  # behind a
        return d_ap
    angular = d_ap / EARTH_RADIUS_M
    cross = math.asin(max(-1.0, min(1.0, math.sin(angular) * math.sin(delta))))
    along = math.acos(max(-1.0, min(1.0, math.cos(angular) / math.cos(cross))))
    if along * EARTH_RADIUS_M >= haversine_m(a, b):  # beyond b
        return haversine_m(p, b)
    return abs(cross) * EARTH_RADIUS_M


@dataclass(frozen=True)
class Polyline:
    """A path of great-circle segments, with the cumulative distance at each vertex."""

    points: tuple[LatLon, ...]
    cumulative_m: tuple[float, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.points) < 2:
            raise ValueError("a polyline needs at least two points")
        total = 0.0
        cumulative = [0.0]
        for a, b in pairwise(self.points):
            total += haversine_m(a, b)
            cumulative.append(total)
        object.__setattr__(self, "cumulative_m", tuple(cumulative))

    @classmethod
    def of(cls, points: Sequence[LatLon]) -> Polyline:
        return cls(tuple(points))

    @property
    def length_m(self) -> float:
        return self.cumulative_m[-1]

    def reversed(self) -> Polyline:
        return Polyline(self.points[::-1])

    def locate(self, distance_m: float) -> tuple[LatLon, float]:
        """The point ``distance_m`` along the path (clamped to its ends) and the bearing there."""
        d = max(0.0, min(self.length_m, distance_m))
        i = min(bisect_right(self.cumulative_m, d), len(self.points) - 1) - 1
        i = max(0, i)
        a, b = self.points[i], self.points[i + 1]
        seg = self.cumulative_m[i + 1] - self.cumulative_m[i]
        fraction = 0.0 if seg == 0.0 else (d - self.cumulative_m[i]) / seg
        point = intermediate_point(a, b, fraction)
        # The bearing of a great circle drifts along it: take it where the point is.
        bearing = initial_bearing_deg(point if fraction < 0.999 else a, b)
        return point, bearing

    def distance_to_m(self, p: LatLon) -> float:
        """Shortest distance from ``p`` to the path, in metres."""
        return min(distance_to_segment_m(p, a, b) for a, b in pairwise(self.points))


def interpolate_along(points: Sequence[LatLon], distance_m: float) -> LatLon:
    """The point ``distance_m`` along the polyline through ``points`` (clamped to its ends)."""
    return Polyline.of(points).locate(distance_m)[0]
