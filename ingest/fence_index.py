"""The in-memory spatial index of geofences: which fixes of a batch lie in or near which
fences, for the whole batch at once (shapely 2 ``STRtree`` and vectorised predicates).

For each (fix, fence) pair it answers ``IN``, ``EDGE`` (within the fix's margin of the
boundary, so it says nothing about the side) or, by absence, ``OUT``:

- candidates: the tree's fences whose bounds meet each fix's margin box (lon/lat);
- circles: great-circle distance to the centre against the radius, in true metres;
- polygons and corridors: point-in-polygon and distance-to-boundary on prepared
  geometries, in a per-fence frame where x is scaled by cos(latitude) so that
  distances are metres (boundaries along the antimeridian and poles, where a shape was
  cut, are not edges).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

from ingest.tracking_rules import EDGE, IN
from shiptrack import geodesy
from shiptrack.geofences import FenceSpec

Ints = NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Fence:
    id: str
    name: str
    spec: FenceSpec


@dataclass(frozen=True, slots=True)
class Pairs:
    """Fixes (by index into the batch) and fences (by index into ``FenceIndex.fences``)
    that are not ``OUT`` of each other, with their ``IN``/``EDGE`` class."""

    fix: Ints
    fence: Ints
    cls: Ints


def _frame(geom: BaseGeometry) -> tuple[float, BaseGeometry, BaseGeometry]:
    scale = geodesy.local_scale(geom)
    body = geodesy.scaled(geom, scale)
    edge = geodesy.scaled(geodesy.seamless_boundary(geom), scale)
    shapely.prepare(body)
    shapely.prepare(edge)
    return scale, body, edge


class FenceIndex:
    def __init__(self, fences: Iterable[Fence] = ()) -> None:
        self.fences = list(fences)
        self.by_id = {f.id: i for i, f in enumerate(self.fences)}
        n = len(self.fences)
        self.tree = shapely.STRtree([f.spec.shape.geometry for f in self.fences])
        self.is_circle = np.array([f.spec.kind == "circle" for f in self.fences], dtype=bool)
        self.center_lat = np.zeros(n)
        self.center_lon = np.zeros(n)
        self.radius = np.zeros(n)
        self.scale = np.ones(n)
        body: list[BaseGeometry | None] = [None] * n
        edge: list[BaseGeometry | None] = [None] * n
        for i, f in enumerate(self.fences):
            shape = f.spec.shape
            if shape.center is not None and shape.radius_m is not None:
                self.center_lat[i], self.center_lon[i] = shape.center
                self.radius[i] = shape.radius_m
            else:
                self.scale[i], body[i], edge[i] = _frame(shape.geometry)
        self.body = np.array(body, dtype=object)
        self.edge = np.array(edge, dtype=object)

    def __len__(self) -> int:
        return len(self.fences)

    def distance_m(self, i: int, lat: float, lon: float) -> float:
        """Metres from a point to fence ``i`` (0 inside); approximate for large shapes."""
        if self.is_circle[i]:
            d = float(geodesy.haversine_m(lat, lon, self.center_lat[i], self.center_lon[i]))
            return max(0.0, d - float(self.radius[i]))
        x, y = lon * float(self.scale[i]), lat
        if shapely.intersects_xy(self.body[i], x, y):
            return 0.0
        return float(shapely.distance(self.edge[i], shapely.Point(x, y))) * geodesy.M_PER_DEG

    def anchor(self, i: int) -> tuple[float, float]:
        """A point inside fence ``i`` (lat, lon): a circle's centre, else a point on the
        surface."""
        if self.is_circle[i]:
            return float(self.center_lat[i]), float(self.center_lon[i])
        point = self.fences[i].spec.shape.geometry.representative_point()
        return float(point.y), float(point.x)

    def classify(self, lats: NDArray[np.float64], lons: NDArray[np.float64],
                 margins_m: NDArray[np.float64]) -> Pairs:
        """Every (fix, fence) pair that is ``IN`` or ``EDGE``; all others are ``OUT``."""
        empty = np.zeros(0, dtype=np.int64)
        if not self.fences or len(lats) == 0:
            return Pairs(empty, empty, empty)
        dlat = margins_m / geodesy.M_PER_DEG
        dlon = geodesy.lon_margin_deg(lats, margins_m)
        boxes = shapely.box(np.maximum(lons - dlon, -180.0), np.maximum(lats - dlat, -90.0),
                            np.minimum(lons + dlon, 180.0), np.minimum(lats + dlat, 90.0))
        fix, fence = self.tree.query(boxes)
        cls = np.zeros(len(fix), dtype=np.int64)
        circ = self.is_circle[fence]
        if circ.any():
            f, k = fix[circ], fence[circ]
            d = geodesy.haversine_m(lats[f], lons[f], self.center_lat[k], self.center_lon[k])
            r, m = self.radius[k], margins_m[f]
            cls[circ] = np.where(np.abs(d - r) <= m, EDGE, np.where(d < r, IN, 0))
        poly = ~circ
        if poly.any():
            f, k = fix[poly], fence[poly]
            px, py = lons[f] * self.scale[k], lats[f]
            inside = shapely.intersects_xy(self.body[k], px, py)
            near = shapely.dwithin(self.edge[k], shapely.points(px, py),
                                   margins_m[f] / geodesy.M_PER_DEG)
            cls[poly] = np.where(near, EDGE, np.where(inside, IN, 0))
        keep = cls > 0
        return Pairs(fix[keep].astype(np.int64), fence[keep].astype(np.int64), cls[keep])


Frame = tuple[float, BaseGeometry, BaseGeometry]


def classify_shapes(frames: list[Frame], lats: NDArray[np.float64], lons: NDArray[np.float64],
                    margins_m: NDArray[np.float64]) -> tuple[Ints, NDArray[np.float64]]:
    """Pairs of (shape, fix), element by element, in one vectorised pass (route
    corridors): the class of each fix and its distance in metres (0 inside)."""
    scale = np.array([f[0] for f in frames], dtype=np.float64)
    body = np.array([f[1] for f in frames], dtype=object)
    edge = np.array([f[2] for f in frames], dtype=object)
    px, py = lons * scale, lats
    pts = shapely.points(px, py)
    inside = shapely.intersects_xy(body, px, py)
    near = shapely.dwithin(edge, pts, margins_m / geodesy.M_PER_DEG)
    dist = np.zeros(len(frames))
    out = ~inside
    if out.any():
        dist[out] = shapely.distance(edge[out], pts[out]) * geodesy.M_PER_DEG
    cls = np.where(near, EDGE, np.where(inside, IN, 0)).astype(np.int64)
    return cls, dist


def shape_frame(geom: BaseGeometry) -> Frame:
    return _frame(geom)
