"""The geometry cost budget (pure): which corridors are refused, with what message, and a
stored corridor used without buffering again."""

from __future__ import annotations

from typing import Any

import pytest
import shapely

from shiptrack import geodesy
from shiptrack.geofences import (
    MAX_CORRIDOR_VERTICES,
    GeofenceError,
    corridor_cost,
    corridor_shape,
    corridor_wkb,
    from_wkb,
    parse_feature,
)

EQUATOR_160 = [[0, 0], [40, 0], [80, 0], [120, 0], [160, 0]]  # 5 vertices, ~17,800 km


def test_cost_grows_with_length_times_buffer() -> None:
    assert corridor_cost(10_000, 1000) < corridor_cost(10_000, 100_000)
    assert corridor_cost(1_000_000, 1000) == pytest.approx(100 * corridor_cost(10_000, 1000))
    assert corridor_cost(1_000_000, 100_000) < MAX_CORRIDOR_VERTICES < corridor_cost(
        10_000_000, 100_000)


def test_a_five_vertex_corridor_with_a_100_km_buffer_is_refused_with_a_hint() -> None:
    with pytest.raises(GeofenceError) as info:
        corridor_shape(EQUATOR_160, 100_000)
    message = str(info.value)
    assert "cost too much" in message and "17,791 km" in message and "at most 7,833 km" in message


def test_a_line_longer_than_half_the_earth_is_refused() -> None:
    with pytest.raises(GeofenceError, match="km long"):
        corridor_shape([[-179, 0], [-60, 0], [60, 0], [179, 0]], 10)


def test_within_budget_is_built() -> None:
    shape = corridor_shape(EQUATOR_160[:2], 1000)
    assert shape.kind == "corridor" and shape.geometry.area > 0


def test_a_stored_corridor_is_used_without_buffering(monkeypatch: pytest.MonkeyPatch) -> None:
    feature = {"type": "Feature", "properties": {"name": "road", "buffer_m": 500},
               "geometry": {"type": "LineString", "coordinates": [[13.0, 52.0], [13.5, 52.0]]}}
    built = parse_feature(feature)
    wkb = corridor_wkb(built.shape)
    assert wkb is not None

    def no_buffering(*args: Any) -> Any:
        raise AssertionError("buffered again")

    monkeypatch.setattr(geodesy, "corridor_polygon", no_buffering)
    again = parse_feature(feature, from_wkb(wkb))
    assert shapely.equals(again.shape.geometry, built.shape.geometry)


def test_unreadable_or_odd_wkb_is_ignored() -> None:
    assert from_wkb(None) is None and from_wkb(b"junk") is None
    assert from_wkb(shapely.to_wkb(shapely.Point(1, 2))) is None


def test_only_corridors_are_stored() -> None:
    circle = parse_feature({"type": "Feature", "properties": {"name": "c", "radius_m": 50},
                            "geometry": {"type": "Point", "coordinates": [1, 2]}})
    assert corridor_wkb(circle.shape) is None
