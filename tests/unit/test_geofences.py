"""GeoJSON geofences: what is accepted, and what is refused with which message."""

from __future__ import annotations

import math
from typing import Any

import pytest

from shiptrack.geofences import MAX_VERTICES, GeofenceError, parse_feature, parse_route

SQUARE = [[13.0, 52.0], [13.1, 52.0], [13.1, 52.1], [13.0, 52.1], [13.0, 52.0]]


def feature(geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": {"name": "depot", **props}}


def refused(obj: Any) -> str:
    with pytest.raises(GeofenceError) as info:
        parse_feature(obj)
    return str(info.value)


def test_the_four_shapes() -> None:
    poly = parse_feature(feature({"type": "Polygon", "coordinates": [SQUARE]}))
    assert (poly.kind, poly.name, poly.shape.geometry.geom_type) == ("polygon", "depot",
                                                                    "Polygon")
    hole = [[13.02, 52.02], [13.02, 52.04], [13.04, 52.04], [13.04, 52.02], [13.02, 52.02]]
    holed = parse_feature(feature({"type": "Polygon", "coordinates": [SQUARE, hole]}))
    assert len(holed.shape.geometry.interiors) == 1
    far = [[x + 1, y] for x, y in SQUARE]
    multi = parse_feature(feature({"type": "MultiPolygon", "coordinates": [[SQUARE], [far]]}))
    assert multi.shape.geometry.geom_type == "MultiPolygon"
    circle = parse_feature(feature({"type": "Point", "coordinates": [13.4, 52.5]},
                                   radius_m=250, dwell_s=60, delivery_zone=True, color="red"))
    assert (circle.kind, circle.shape.center, circle.shape.radius_m) == ("circle", (52.5, 13.4),
                                                                        250.0)
    assert (circle.dwell_s, circle.delivery_zone, circle.properties["color"]) == (60, True, "red")
    corridor = parse_feature(feature({"type": "LineString",
                                      "coordinates": [[13.0, 52.0], [13.5, 52.2]]},
                                     buffer_m=500))
    assert corridor.kind == "corridor" and corridor.shape.geometry.is_valid


@pytest.mark.parametrize(("obj", "message"), [
    ({"type": "Polygon", "coordinates": [SQUARE]}, "expected a GeoJSON Feature"),
    ({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [SQUARE]}},
     "properties must be an object"),
    (feature({"type": "Polygon", "coordinates": [SQUARE]}, name=""), "properties.name is req"),
    (feature({"type": "Polygon",
              "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}),
     "polygon is not valid: self-intersection at lon 0.5, lat 0.5"),
    (feature({"type": "Polygon", "coordinates": [SQUARE[:-1]]}),
     "polygon ring 1 is not closed: its first and last positions differ"),
    (feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [0, 0]]]}),
     "polygon ring 1 needs at least 4 positions, got 3"),
    (feature({"type": "Polygon", "coordinates": [[[0, 0], [181, 0], [1, 1], [0, 0]]]}),
     "polygon ring 1 position 2 longitude 181.0 is outside -180..180"),
    (feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 95], [1, 1], [0, 0]]]}),
     "latitude 95.0 is outside -90..90"),
    (feature({"type": "Polygon", "coordinates": [[[0, 0], ["1", 0], [1, 1], [0, 0]]]}),
     "position 2 longitude must be a number"),
    (feature({"type": "Polygon", "coordinates": [[[0, 0], [math.nan, 0], [1, 1], [0, 0]]]}),
     "must be finite"),
    (feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [2, 0], [0, 0]]]}),
     "polygon is not valid"),
    (feature({"type": "MultiPolygon", "coordinates": [[SQUARE], [SQUARE]]}),
     "multipolygon is not valid"),
    (feature({"type": "Point", "coordinates": [13.4, 52.5]}), "needs properties.radius_m"),
    (feature({"type": "Point", "coordinates": [13.4, 52.5]}, radius_m=0),
     "properties.radius_m must be > 0"),
    (feature({"type": "Point", "coordinates": [13.4, 52.5]}, radius_m=-5),
     "properties.radius_m must be > 0"),
    (feature({"type": "Point", "coordinates": [13.4, 52.5]}, radius_m="5"),
     "properties.radius_m must be a number"),
    (feature({"type": "Point", "coordinates": [200, 52.5]}, radius_m=5), "outside -180..180"),
    (feature({"type": "LineString", "coordinates": [[13, 52], [14, 52]]}),
     "needs properties.buffer_m"),
    (feature({"type": "LineString", "coordinates": [[13, 52]]}, buffer_m=10),
     "needs at least 2 positions"),
    (feature({"type": "LineString", "coordinates": [[13, 89.995], [14, 89.995]]}, buffer_m=10),
     "within 1 km of a pole"),
    (feature({"type": "GeometryCollection", "geometries": []}),
     "geometry type 'GeometryCollection' is not supported"),
    (feature({"type": "Point", "coordinates": [1, 2]}, radius_m=5, dwell_s=-1),
     "properties.dwell_s must be between"),
    (feature({"type": "Point", "coordinates": [1, 2]}, radius_m=5, delivery_zone="yes"),
     "delivery_zone must be true or false"),
])
def test_bad_geofences_say_what_is_wrong(obj: Any, message: str) -> None:
    assert message in refused(obj)


def test_too_many_vertices() -> None:
    n = MAX_VERTICES + 1
    ring = [[math.cos(2 * math.pi * i / n), math.sin(2 * math.pi * i / n)] for i in range(n)]
    assert f"has {n + 1} positions; at most {MAX_VERTICES}" in refused(
        feature({"type": "Polygon", "coordinates": [[*ring, ring[0]]]}))
    half = [[x * 0.5, y * 0.5] for x, y in ring[: n // 2]]
    outer = ring[: n // 2 + 10]
    assert f"at most {MAX_VERTICES}" in refused(feature({
        "type": "Polygon", "coordinates": [[*outer, outer[0]], [*half, half[0]]]}))


def test_route_is_a_linestring() -> None:
    line = {"type": "LineString", "coordinates": [[13, 52], [14, 52.5]]}
    assert parse_route(line) == {"type": "LineString", "coordinates": [[13.0, 52.0],
                                                                       [14.0, 52.5]]}
    assert parse_route({"type": "Feature", "geometry": line, "properties": {}})["type"] == \
        "LineString"
    with pytest.raises(GeofenceError, match="route must be a GeoJSON LineString"):
        parse_route({"type": "Point", "coordinates": [1, 2]})
    with pytest.raises(GeofenceError, match="route position 2 latitude"):
        parse_route({"type": "LineString", "coordinates": [[1, 2], [1, 200]]})
