"""Geometry on the sphere, vectorised with numpy: distances, circles and corridors in true
metres, and the antimeridian.

Shapes are built in an *unwrapped* longitude space (continuous, may pass +-180) and then
cut back into [-180, 180] by ``wrap``, so that a circle or corridor across the
antimeridian becomes a MultiPolygon of its two sides. Local metric work (buffering a
corridor) uses an azimuthal equidistant projection centred on each short piece, whose
distortion over a few kilometres is far below GPS noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

EARTH_RADIUS_M = 6_371_008.8
M_PER_DEG = math.pi * EARTH_RADIUS_M / 180.0  # metres per degree of latitude
CIRCLE_TOLERANCE_M = 1.0  # how far a circle's polygon may cut inside the true circle
CHUNK_M = 5_000.0  # corridor pieces buffered in their own local projection
DENSIFY_M = 500.0  # longest edge of a corridor outline before it is unprojected

Floats = NDArray[np.float64]


def haversine_m(lat1: Any, lon1: Any, lat2: Any, lon2: Any) -> Any:
    """Great-circle distance in metres; scalars or numpy arrays (broadcast)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def destination(lat: float, lon: float, bearings_deg: Floats, dist_m: float) -> tuple[
        Floats, Floats]:
    """Points ``dist_m`` from (lat, lon) along each bearing; longitudes unwrapped around
    ``lon`` (within +-180 of it)."""
    p1 = math.radians(lat)
    d, th = dist_m / EARTH_RADIUS_M, np.radians(bearings_deg)
    p2 = np.arcsin(np.clip(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * np.cos(th),
                           -1.0, 1.0))
    dl = np.arctan2(np.sin(th) * math.sin(d) * math.cos(p1),
                    math.cos(d) - math.sin(p1) * np.sin(p2))
    return np.degrees(p2), lon + np.degrees(dl)


def lon_margin_deg(lat: Any, metres: Any) -> Any:
    """Degrees of longitude that are at least ``metres`` wide at ``lat`` (360 at a pole)."""
    cos = np.cos(np.radians(lat))
    with np.errstate(divide="ignore"):
        deg = np.asarray(metres) / (M_PER_DEG * np.maximum(cos, 1e-12))
    return np.minimum(deg, 360.0)


# -- antimeridian -------------------------------------------------------------------------

def unwrap_lons(lons: Sequence[float]) -> list[float]:
    """Longitudes made continuous: a step of more than 180 degrees goes the short way."""
    out: list[float] = []
    for lon in lons:
        if out:
            prev = out[-1]
            lon = prev + ((lon - prev + 180.0) % 360.0 - 180.0)
        out.append(float(lon))
    return out


def wrap(geom: BaseGeometry) -> BaseGeometry:
    """Cut a shape drawn in unwrapped longitudes back into [-180, 180]."""
    minx, _, maxx, _ = geom.bounds
    if minx >= -180.0 and maxx <= 180.0:
        return geom
    parts = []
    for k in range(math.floor((minx + 180.0) / 360.0), math.floor((maxx + 180.0) / 360.0) + 1):
        window = shapely.box(-180.0 + 360.0 * k, -90.0, 180.0 + 360.0 * k, 90.0)
        part = shapely.intersection(geom, window)
        if not part.is_empty:
            parts.append(shapely.affinity.translate(part, xoff=-360.0 * k))
    return shapely.union_all(parts)


# -- circles ------------------------------------------------------------------------------

def contains_pole(lat: float, radius_m: float) -> int:
    """+1 / -1 when a circle contains the north / south pole, else 0."""
    if haversine_m(lat, 0.0, 90.0, 0.0) < radius_m:
        return 1
    if haversine_m(lat, 0.0, -90.0, 0.0) < radius_m:
        return -1
    return 0


def circle_polygon(lat: float, lon: float, radius_m: float) -> BaseGeometry:
    """The geodesic circle as a polygon in lon/lat, its vertices on the true circle and
    its edges at most ``CIRCLE_TOLERANCE_M`` inside it; cut at the antimeridian; a circle
    around a pole becomes a polar cap."""
    ratio = max(-1.0, 1.0 - CIRCLE_TOLERANCE_M / radius_m)
    n = int(min(2048, max(64, math.ceil(math.pi / math.acos(ratio)))))
    bearings = np.linspace(0.0, 360.0, n, endpoint=False)
    lats, lons = destination(lat, lon, bearings, radius_m)
    pole = contains_pole(lat, radius_m)
    if not pole:
        return wrap(shapely.Polygon(np.column_stack([lons, lats])))
    # around a pole the boundary winds once through every longitude: close it via the pole
    lons = np.degrees(np.unwrap(np.radians(lons)))
    order = np.argsort(lons)
    lons, lats = lons[order], lats[order]
    lons = np.append(lons, lons[0] + 360.0)
    lats = np.append(lats, lats[0])
    ring = [*zip(lons.tolist(), lats.tolist(), strict=True),
            (float(lons[-1]), 90.0 * pole), (float(lons[0]), 90.0 * pole)]
    return wrap(shapely.Polygon(ring).buffer(0))


# -- corridors ----------------------------------------------------------------------------

def aeqd_forward(lat0: float, lon0: float, lats: Floats, lons: Floats) -> tuple[Floats, Floats]:
    """Azimuthal equidistant projection centred on (lat0, lon0), in metres."""
    p0, p = math.radians(lat0), np.radians(lats)
    dl = np.radians(lons - lon0)
    cos_c = np.clip(math.sin(p0) * np.sin(p) + math.cos(p0) * np.cos(p) * np.cos(dl), -1.0, 1.0)
    c = np.arccos(cos_c)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(c < 1e-12, 1.0, c / np.sin(c))
    x = EARTH_RADIUS_M * k * np.cos(p) * np.sin(dl)
    y = EARTH_RADIUS_M * k * (math.cos(p0) * np.sin(p) - math.sin(p0) * np.cos(p) * np.cos(dl))
    return x, y


def aeqd_inverse(lat0: float, lon0: float, x: Floats, y: Floats) -> tuple[Floats, Floats]:
    """Back from the projection; longitudes stay within +-180 of ``lon0`` (unwrapped)."""
    p0 = math.radians(lat0)
    rho = np.hypot(x, y)
    c = rho / EARTH_RADIUS_M
    with np.errstate(invalid="ignore", divide="ignore"):
        lat = np.where(rho < 1e-9, p0, np.arcsin(np.clip(
            np.cos(c) * math.sin(p0) + y * np.sin(c) * math.cos(p0) / rho, -1.0, 1.0)))
    dl = np.arctan2(x * np.sin(c), rho * math.cos(p0) * np.cos(c) - y * math.sin(p0) * np.sin(c))
    return np.degrees(lat), lon0 + np.degrees(dl)


def _chunks(lons: Floats, lats: Floats) -> list[tuple[Floats, Floats]]:
    """Consecutive pieces of a line, each about ``CHUNK_M`` long (sharing end points)."""
    seg = haversine_m(lats[:-1], lons[:-1], lats[1:], lons[1:])
    pieces: list[tuple[Floats, Floats]] = []
    start, run = 0, 0.0
    for i, length in enumerate(seg, start=1):
        run += float(length)
        if run >= CHUNK_M or i == len(lons) - 1:
            pieces.append((lons[start:i + 1], lats[start:i + 1]))
            start, run = i, 0.0
    return pieces


def corridor_polygon(coords: Sequence[Sequence[float]], buffer_m: float) -> BaseGeometry:
    """Everything within ``buffer_m`` metres of a lon/lat line (edges straight in lon/lat,
    as GeoJSON draws them); cut at the antimeridian. Raises ``ValueError`` when the
    corridor would reach a pole."""
    lons = np.array(unwrap_lons([c[0] for c in coords]), dtype=np.float64)
    lats = np.array([c[1] for c in coords], dtype=np.float64)
    to_pole = np.minimum(haversine_m(lats, 0.0, 90.0, 0.0), haversine_m(lats, 0.0, -90.0, 0.0))
    if float(np.min(to_pole)) < buffer_m + 1000.0:
        raise ValueError("a corridor may not come within 1 km of a pole")
    line = shapely.segmentize(shapely.LineString(np.column_stack([lons, lats])), 0.01)
    xy = shapely.get_coordinates(line)
    parts = []
    for plons, plats in _chunks(xy[:, 0], xy[:, 1]):
        mid = len(plons) // 2
        lat0, lon0 = float(plats[mid]), float(plons[mid])
        x, y = aeqd_forward(lat0, lon0, plats, plons)
        piece = shapely.LineString(np.column_stack([x, y])) if len(x) > 1 else shapely.Point(
            x[0], y[0])
        outline = shapely.segmentize(piece.buffer(buffer_m, quad_segs=16), DENSIFY_M)
        ring = shapely.get_coordinates(outline.exterior)
        blat, blon = aeqd_inverse(lat0, lon0, ring[:, 0], ring[:, 1])
        parts.append(shapely.Polygon(np.column_stack([blon, blat])))
    return wrap(shapely.union_all(parts))


# -- distances to shapes --------------------------------------------------------------------

def local_scale(geom: BaseGeometry) -> float:
    """cos(latitude) at a shape's centre: x * scale, y makes degrees roughly isotropic
    (one unit ~ ``M_PER_DEG`` metres) near the shape."""
    _, miny, _, maxy = geom.bounds
    return max(math.cos(math.radians((miny + maxy) / 2.0)), 1e-6)


def scaled(geom: BaseGeometry, scale: float) -> BaseGeometry:
    return shapely.affinity.scale(geom, xfact=scale, yfact=1.0, origin=(0.0, 0.0))


def seamless_boundary(geom: BaseGeometry) -> BaseGeometry:
    """The boundary of a shape without the artificial edges along +-180 and the poles."""
    seams = shapely.MultiLineString([[(180.0, -90.0), (180.0, 90.0)],
                                     [(-180.0, -90.0), (-180.0, 90.0)],
                                     [(-180.0, 90.0), (180.0, 90.0)],
                                     [(-180.0, -90.0), (180.0, -90.0)]])
    return shapely.difference(geom.boundary, seams)
