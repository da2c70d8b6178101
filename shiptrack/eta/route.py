"""A planned route: projecting fixes onto the polyline, and the distance still ahead.

A fix is projected onto every segment at once (numpy; a local flat frame centred on the
fix, exact enough near it, and only near it does the answer matter). Which of the nearby
projections is *the* position matters on routes that pass the same place twice (a loop,
an out-and-back on one road):

- Only projections within reach of the previous progress count (``reach_m``: how far the
  device could have driven since its last fix, either way), unless none of those is on
  the route and one elsewhere is: then the device clearly is elsewhere (it went back, or
  was offline for a long drive) and progress jumps there.
- Among the projections about as close as the best one (``tolerance_m``, the fix's
  accuracy), the one nearest the *expected* progress wins: the previous progress plus
  what the device's recent speed would have covered. So a device moving on along an
  out-and-back keeps going forward, and one that turns round is followed backwards step
  by step, because there the backward projection is the only close one.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shiptrack.errors import InputError
from shiptrack.eta.geo import M_PER_DEG, between, haversine_m

Floats = NDArray[np.float64]

ON_ROUTE_M = 250.0  # a projection this close (plus the fix's accuracy) is "on the route"


class RouteError(InputError):
    """Not a usable route: the message says why."""


@dataclass(frozen=True, slots=True)
class Projection:
    along_m: float  # distance along the route from its start
    offset_m: float  # distance from the fix to that point of the route


class Route:
    """A polyline of ``(lat, lon)`` vertices with cumulative distances along it."""

    def __init__(self, latlons: Sequence[tuple[float, float]]) -> None:
        points = [p for i, p in enumerate(latlons) if i == 0 or p != latlons[i - 1]]
        if len(points) < 2:
            raise RouteError("a route needs at least two distinct points")
        self.lats: Floats = np.array([p[0] for p in points], dtype=np.float64)
        self.lons: Floats = np.array([p[1] for p in points], dtype=np.float64)
        seg = [haversine_m(*a, *b) for a, b in itertools.pairwise(points)]
        self.seg_m: Floats = np.array(seg, dtype=np.float64)
        self.cum_m: Floats = np.concatenate([[0.0], np.cumsum(self.seg_m)])
        self.length_m = float(self.cum_m[-1])
        self._lat_list: list[float] = self.lats.tolist()
        self._lon_list: list[float] = self.lons.tolist()
        self._cum_list: list[float] = self.cum_m.tolist()
        self._seg_list: list[float] = self.seg_m.tolist()

    @classmethod
    def from_geojson(cls, obj: Any) -> Route:
        """From a GeoJSON LineString (``[lon, lat]`` pairs), or a Feature holding one."""
        if isinstance(obj, dict) and obj.get("type") == "Feature":
            obj = obj.get("geometry")
        if not isinstance(obj, dict) or obj.get("type") != "LineString":
            raise RouteError("route must be a GeoJSON LineString")
        coords = obj.get("coordinates")
        if not isinstance(coords, list):
            raise RouteError("route coordinates must be a list of [lon, lat]")
        latlons = []
        for c in coords:
            if not (isinstance(c, list | tuple) and len(c) >= 2
                    and all(isinstance(v, int | float) and math.isfinite(v) for v in c[:2])):
                raise RouteError("route coordinates must be [lon, lat] numbers")
            if not (-90.0 <= c[1] <= 90.0 and -180.0 <= c[0] <= 180.0):
                raise RouteError("route coordinates out of range")
            latlons.append((float(c[1]), float(c[0])))
        return cls(latlons)

    @property
    def end(self) -> tuple[float, float]:
        return float(self.lats[-1]), float(self.lons[-1])

    def candidates(self, lat: float, lon: float) -> tuple[Floats, Floats]:
        """For every segment: (distance along the route, distance from the fix) of its
        point nearest the fix."""
        k = M_PER_DEG
        x = ((self.lons - lon + 180.0) % 360.0 - 180.0) * (k * math.cos(math.radians(lat)))
        y = (self.lats - lat) * k
        ax, ay, dx, dy = x[:-1], y[:-1], np.diff(x), np.diff(y)
        length2 = dx * dx + dy * dy
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.where(length2 > 0, -(ax * dx + ay * dy) / length2, 0.0)
        t = np.clip(t, 0.0, 1.0)
        offset = np.hypot(ax + t * dx, ay + t * dy)
        return self.cum_m[:-1] + t * self.seg_m, offset

    def _scan(self, lat: float, lon: float, lo: int, hi: int) -> list[tuple[float, float]]:
        """``candidates`` for segments ``lo..hi-1`` only, in plain Python (a few segments
        near the previous progress: cheaper than numpy's per-call overhead)."""
        k = M_PER_DEG
        kx = k * math.cos(math.radians(lat))
        lats, lons, cum, seg = self._lat_list, self._lon_list, self._cum_list, self._seg_list
        out = []
        bx = ((lons[lo] - lon + 180.0) % 360.0 - 180.0) * kx
        by = (lats[lo] - lat) * k
        for i in range(lo, hi):
            ax, ay = bx, by
            bx = ((lons[i + 1] - lon + 180.0) % 360.0 - 180.0) * kx
            by = (lats[i + 1] - lat) * k
            dx, dy = bx - ax, by - ay
            length2 = dx * dx + dy * dy
            t = min(1.0, max(0.0, -(ax * dx + ay * dy) / length2)) if length2 > 0 else 0.0
            out.append((cum[i] + t * seg[i], math.hypot(ax + t * dx, ay + t * dy)))
        return out

    def project(self, lat: float, lon: float, previous_m: float | None = None,
                expected_m: float | None = None, reach_m: float = math.inf,
                tolerance_m: float = 30.0) -> Projection:
        """Where on the route the fix is (module docstring: loops, going backwards)."""
        target = expected_m if expected_m is not None else (previous_m or 0.0)
        on_route = ON_ROUTE_M + tolerance_m
        if previous_m is not None and math.isfinite(reach_m):
            lo = max(0, bisect.bisect_right(self._cum_list, previous_m - reach_m) - 1)
            hi = min(len(self._seg_list), bisect.bisect_left(self._cum_list,
                                                             previous_m + reach_m))
            near = [(a, d) for a, d in self._scan(lat, lon, lo, hi)
                    if abs(a - previous_m) <= reach_m]
            if near and min(d for _, d in near) <= on_route:
                return _choose(near, target, tolerance_m)
        along, offset = self.candidates(lat, lon)
        pool = np.ones(len(along), dtype=bool)
        if previous_m is not None and math.isfinite(reach_m):
            window = np.abs(along - previous_m) <= reach_m
            if window.any() and offset.min() > on_route:
                pool = window
        best = offset[pool].min()
        close = pool & (offset <= best + tolerance_m)
        i = int(np.argmin(np.where(close, np.abs(along - target), np.inf)))
        return Projection(float(along[i]), float(offset[i]))

    def point_at(self, along_m: float) -> tuple[float, float]:
        """The route's point ``along_m`` from its start (clamped to the route)."""
        a = min(max(along_m, 0.0), self.length_m)
        i = int(np.searchsorted(self.cum_m, a, side="right")) - 1
        i = min(max(i, 0), len(self.seg_m) - 1)
        f = (a - self.cum_m[i]) / self.seg_m[i] if self.seg_m[i] > 0 else 0.0
        return between(float(self.lats[i]), float(self.lons[i]), float(self.lats[i + 1]),
                       float(self.lons[i + 1]), float(f))

    def pieces(self, piece_m: float) -> tuple[Floats, list[tuple[float, float]]]:
        """The route cut into pieces of about ``piece_m``: their start distances (plus the
        route's length at the end) and each piece's midpoint."""
        n = max(1, round(self.length_m / piece_m))
        starts = np.linspace(0.0, self.length_m, n + 1)
        mids = [self.point_at((a + b) / 2) for a, b in itertools.pairwise(starts)]
        return starts, mids


def _choose(candidates: list[tuple[float, float]], target: float,
            tolerance_m: float) -> Projection:
    """Of the candidates about as close as the best, the one nearest ``target``."""
    best = min(d for _, d in candidates)
    along, offset = min(((a, d) for a, d in candidates if d <= best + tolerance_m),
                        key=lambda c: abs(c[0] - target))
    return Projection(along, offset)
