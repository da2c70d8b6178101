"""Geofences from GeoJSON: parse, validate, and build the shape a fix is tested against.

Pure functions, shared by the API (which refuses bad input with a message saying what is
wrong) and by ingest (which builds its spatial index from the stored features).

    Polygon / MultiPolygon           as drawn (edges straight in lon/lat, RFC 7946);
                                     one crossing the antimeridian must be split there
    Point + properties.radius_m      a circle in true metres (great-circle distance)
    LineString + properties.buffer_m a corridor: everything within buffer_m metres
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import shapely
import shapely.errors
from shapely.geometry.base import BaseGeometry

from shiptrack import geodesy
from shiptrack.errors import InputError

MAX_VERTICES = 10_000
MAX_RADIUS_M = 2_000_000.0
MAX_BUFFER_M = 100_000.0
# The cost budget of a corridor (docs/RELIABILITY.md): buffering works piece by piece
# (geodesy.CHUNK_M of line each), every piece outlined in about
# (2 pi buffer + 2 CHUNK_M) / DENSIFY_M vertices, all merged. Both bounds keep one
# corridor under about a second of CPU and tens of MB, once, when it is written.
MAX_CORRIDOR_LENGTH_M = 20_000_000.0  # half the Earth's circumference
MAX_CORRIDOR_VERTICES = 2_000_000
MAX_DWELL_S = 30 * 24 * 3600.0
MAX_NAME = 200

Kind = Literal["polygon", "circle", "corridor"]


class GeofenceError(InputError):
    """Input that is not an acceptable geofence; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class Shape:
    """What a fix is tested against. ``geometry`` is in lon/lat within [-180, 180]
    (a circle's is its polygon, used for the index; membership uses the true circle)."""

    kind: Kind
    geometry: BaseGeometry
    center: tuple[float, float] | None = None  # (lat, lon) of a circle
    radius_m: float | None = None


@dataclass(frozen=True, slots=True)
class FenceSpec:
    name: str
    geometry: dict[str, Any]
    properties: dict[str, Any]
    shape: Shape
    dwell_s: float | None = None
    delivery_zone: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> Kind:
        return self.shape.kind


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GeofenceError(f"{what} must be a number")
    if not math.isfinite(value):
        raise GeofenceError(f"{what} must be finite")
    return float(value)


def _position(value: Any, where: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or not 2 <= len(value) <= 3:
        raise GeofenceError(f"{where} must be a position [lon, lat]")
    lon, lat = _number(value[0], f"{where} longitude"), _number(value[1], f"{where} latitude")
    if not -180.0 <= lon <= 180.0:
        raise GeofenceError(f"{where} longitude {lon} is outside -180..180")
    if not -90.0 <= lat <= 90.0:
        raise GeofenceError(f"{where} latitude {lat} is outside -90..90")
    return lon, lat


def _positions(value: Any, where: str, minimum: int) -> list[tuple[float, float]]:
    if not isinstance(value, list):
        raise GeofenceError(f"{where} must be an array of positions")
    if len(value) > MAX_VERTICES:
        raise GeofenceError(f"{where} has {len(value)} positions; at most {MAX_VERTICES}")
    if len(value) < minimum:
        raise GeofenceError(f"{where} needs at least {minimum} positions, got {len(value)}")
    return [_position(p, f"{where} position {i + 1}") for i, p in enumerate(value)]


def _rings(value: Any, where: str) -> list[list[tuple[float, float]]]:
    if not isinstance(value, list) or not value:
        raise GeofenceError(f"{where} must be a non-empty array of linear rings")
    rings = []
    for i, raw in enumerate(value):
        name = f"{where} ring {i + 1}"
        ring = _positions(raw, name, 4)
        if ring[0] != ring[-1]:
            raise GeofenceError(f"{name} is not closed: its first and last positions differ")
        rings.append(ring)
    return rings


def _valid(geom: BaseGeometry, what: str) -> BaseGeometry:
    if not shapely.is_valid(geom):
        reason = shapely.is_valid_reason(geom)
        raise GeofenceError(f"{what} is not valid: {_describe(reason)}")
    if geom.area <= 0.0:
        raise GeofenceError(f"{what} has no area")
    return geom


def _describe(reason: str) -> str:
    """GEOS's 'Self-intersection[1 2]' as 'self-intersection at lon 1, lat 2'."""
    text, _, at = reason.partition("[")
    text = text.strip().lower() or "invalid"
    coords = at.rstrip("]").split()
    if len(coords) >= 2:
        return f"{text} at lon {coords[0]}, lat {coords[1]}"
    return text


def _count(n: int) -> None:
    if n > MAX_VERTICES:
        raise GeofenceError(f"geometry has {n} vertices; at most {MAX_VERTICES}")


def polygon_shape(geometry: dict[str, Any]) -> Shape:
    kind, coords = geometry["type"], geometry.get("coordinates")
    if kind == "Polygon":
        rings = _rings(coords, "polygon")
        _count(sum(len(r) for r in rings))
        geom = _valid(shapely.Polygon(rings[0], rings[1:]), "polygon")
        return Shape("polygon", geom)
    if not isinstance(coords, list) or not coords:
        raise GeofenceError("multipolygon coordinates must be a non-empty array of polygons")
    polys = [_rings(p, f"polygon {i + 1}") for i, p in enumerate(coords)]
    _count(sum(len(r) for rings in polys for r in rings))
    parts = [_valid(shapely.Polygon(r[0], r[1:]), f"polygon {i + 1}")
             for i, r in enumerate(polys)]
    return Shape("polygon", _valid(shapely.MultiPolygon(parts), "multipolygon"))


def circle_shape(geometry: dict[str, Any], properties: dict[str, Any]) -> Shape:
    lon, lat = _position(geometry.get("coordinates"), "point")
    if properties.get("radius_m") is None:
        raise GeofenceError("a Point geofence needs properties.radius_m (metres)")
    radius = _number(properties["radius_m"], "properties.radius_m")
    if not 0.0 < radius <= MAX_RADIUS_M:
        raise GeofenceError(f"properties.radius_m must be > 0 and <= {MAX_RADIUS_M:.0f}")
    return Shape("circle", geodesy.circle_polygon(lat, lon, radius), (lat, lon), radius)


def line_length_m(line: list[tuple[float, float]]) -> float:
    lons, lats = np.array([p[0] for p in line]), np.array([p[1] for p in line])
    return float(np.sum(geodesy.haversine_m(lats[:-1], lons[:-1], lats[1:], lons[1:])))


def corridor_cost(length_m: float, buffer_m: float) -> float:
    """Outline vertices that buffering a line of ``length_m`` by ``buffer_m`` builds and
    merges (the budget's unit)."""
    pieces = max(1.0, math.ceil(length_m / geodesy.CHUNK_M))
    return pieces * (2.0 * math.pi * buffer_m + 2.0 * geodesy.CHUNK_M) / geodesy.DENSIFY_M


def check_corridor_cost(line: list[tuple[float, float]], buffer_m: float) -> None:
    """``GeofenceError`` when a corridor would cost more than the budget to build."""
    length = line_length_m(line)
    if length > MAX_CORRIDOR_LENGTH_M:
        raise GeofenceError(f"the line is {length / 1000:,.0f} km long; a corridor may be at "
                            f"most {MAX_CORRIDOR_LENGTH_M / 1000:,.0f} km")
    cost = corridor_cost(length, buffer_m)
    if cost > MAX_CORRIDOR_VERTICES:
        per_km = corridor_cost(geodesy.CHUNK_M, buffer_m) / (geodesy.CHUNK_M / 1000)
        raise GeofenceError(
            f"the corridor would cost too much to build: {length / 1000:,.0f} km of line "
            f"with a {buffer_m:,.0f} m buffer is about {cost:,.0f} outline vertices, at most "
            f"{MAX_CORRIDOR_VERTICES:,}; shorten the line (at this buffer, at most "
            f"{MAX_CORRIDOR_VERTICES / per_km:,.0f} km) or narrow the buffer")


def corridor_shape(coords: Any, buffer: Any, what: str = "properties.buffer_m",
                   built: BaseGeometry | None = None) -> Shape:
    """A corridor, validated and within the cost budget; ``built``: its polygon as
    computed when it was written (``corridor_wkb``), so that nothing is buffered again."""
    line = _positions(coords, "linestring", 2)
    if buffer is None:
        raise GeofenceError(f"a LineString geofence needs {what} (metres)")
    width = _number(buffer, what)
    if not 0.0 < width <= MAX_BUFFER_M:
        raise GeofenceError(f"{what} must be > 0 and <= {MAX_BUFFER_M:.0f}")
    check_corridor_cost(line, width)
    if built is not None:
        return Shape("corridor", built)
    try:
        geom = geodesy.corridor_polygon(line, width)
    except ValueError as exc:
        raise GeofenceError(str(exc)) from exc
    return Shape("corridor", geom)


def corridor_wkb(shape: Shape) -> bytes | None:
    """What is stored to skip the buffering next time: a corridor's polygon as WKB."""
    return shapely.to_wkb(shape.geometry) if shape.kind == "corridor" else None


def from_wkb(data: bytes | None) -> BaseGeometry | None:
    """A stored corridor polygon, or None when absent or unreadable (then rebuilt)."""
    if not data:
        return None
    try:
        geom = shapely.from_wkb(bytes(data))
    except shapely.errors.ShapelyError:
        return None
    return geom if isinstance(geom, shapely.Polygon | shapely.MultiPolygon) else None


def parse_feature(obj: Any, built: BaseGeometry | None = None) -> FenceSpec:
    """A GeoJSON Feature as a geofence, or ``GeofenceError`` saying what is wrong;
    ``built``: a corridor's polygon stored when it was written (see ``corridor_shape``)."""
    if not isinstance(obj, dict) or obj.get("type") != "Feature":
        raise GeofenceError('expected a GeoJSON Feature: {"type": "Feature", "geometry": ...,'
                            ' "properties": {"name": ...}}')
    geometry, properties = obj.get("geometry"), obj.get("properties")
    if not isinstance(properties, dict):
        raise GeofenceError("properties must be an object with at least a name")
    name = properties.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise GeofenceError(f"properties.name is required: a non-empty string of at most "
                            f"{MAX_NAME} characters")
    if not isinstance(geometry, dict):
        raise GeofenceError("geometry must be a GeoJSON geometry object")
    kind = geometry.get("type")
    if kind in ("Polygon", "MultiPolygon"):
        shape = polygon_shape(geometry)
    elif kind == "Point":
        shape = circle_shape(geometry, properties)
    elif kind == "LineString":
        shape = corridor_shape(geometry.get("coordinates"), properties.get("buffer_m"),
                               built=built)
    else:
        raise GeofenceError(f"geometry type {kind!r} is not supported: use Polygon, "
                            "MultiPolygon, Point with properties.radius_m or LineString "
                            "with properties.buffer_m")
    dwell = properties.get("dwell_s")
    if dwell is not None:
        dwell = _number(dwell, "properties.dwell_s")
        if not 0.0 <= dwell <= MAX_DWELL_S:
            raise GeofenceError(f"properties.dwell_s must be between 0 and {MAX_DWELL_S:.0f}")
    zone = properties.get("delivery_zone", False)
    if not isinstance(zone, bool):
        raise GeofenceError("properties.delivery_zone must be true or false")
    clean = {"type": kind, "coordinates": geometry["coordinates"]}
    return FenceSpec(name=name.strip(), geometry=clean, properties=properties, shape=shape,
                     dwell_s=dwell, delivery_zone=zone)


def parse_route(obj: Any) -> dict[str, Any]:
    """A shipment's planned route: a GeoJSON LineString (or a Feature holding one)."""
    if isinstance(obj, dict) and obj.get("type") == "Feature":
        obj = obj.get("geometry")
    if not isinstance(obj, dict) or obj.get("type") != "LineString":
        raise GeofenceError("route must be a GeoJSON LineString")
    line = _positions(obj.get("coordinates"), "route", 2)
    return {"type": "LineString", "coordinates": [[lon, lat] for lon, lat in line]}
