"""Projection onto a planned route: distance along it, loops, a device going backwards."""

from __future__ import annotations

import math

import pytest

from shiptrack.eta.geo import M_PER_DEG
from shiptrack.eta.route import Route, RouteError

LAT = 52.0
KM_LON = 1000.0 / (M_PER_DEG * math.cos(math.radians(LAT)))  # degrees of longitude per km
KM_LAT = 1000.0 / M_PER_DEG


def east(km: float, north_m: float = 0.0) -> tuple[float, float]:
    """A point ``km`` east of (52, 13) and ``north_m`` north of that parallel."""
    return LAT + north_m / M_PER_DEG, 13.0 + km * KM_LON


def follow(route: Route, points: list[tuple[float, float]], step_s: float = 60.0,
           kmh: float = 60.0) -> list[float]:
    """Progress along ``route`` fix by fix, the way the estimator tracks it."""
    along: float | None = None
    out = []
    for lat, lon in points:
        expected = None if along is None else along + kmh / 3.6 * step_s
        found = route.project(lat, lon, along, expected,
                              reach_m=math.inf if along is None else 2000.0 + 50.0 * step_s)
        along = found.along_m
        out.append(along)
    return out


def test_a_point_beside_a_straight_route_projects_square_onto_it() -> None:
    route = Route([east(0), east(10)])
    found = route.project(*east(4, north_m=120.0))
    assert found.along_m == pytest.approx(4000.0, abs=5.0)
    assert found.offset_m == pytest.approx(120.0, abs=1.0)
    assert route.length_m == pytest.approx(10_000.0, rel=1e-3)


def test_before_the_start_and_past_the_end_clamp_to_the_ends() -> None:
    route = Route([east(0), east(10)])
    assert route.project(*east(-3)).along_m == pytest.approx(0.0, abs=1e-6)
    assert route.project(*east(12)).along_m == pytest.approx(route.length_m)
    assert route.project(*east(12)).offset_m == pytest.approx(2000.0, rel=0.01)


def test_out_and_back_on_one_road_keeps_going_forward() -> None:
    # east 10 km, then back west on the same road to the start: every place twice
    out = [east(k) for k in range(11)]
    route = Route(out + out[-2::-1])
    fixes = [east(k, north_m=8.0) for k in range(11)] + \
        [east(k, north_m=-8.0) for k in range(9, -1, -1)]
    progress = follow(route, fixes)
    assert progress == sorted(progress)
    assert progress[0] == pytest.approx(0.0, abs=10.0)
    assert progress[10] == pytest.approx(10_000.0, abs=20.0)
    assert progress[-1] == pytest.approx(20_000.0, rel=1e-3)  # at the start, and done


def test_a_closed_loop_starts_at_zero_and_ends_at_its_length() -> None:
    # a 4 km square that ends where it began
    corners = [east(0), east(1), east(1, north_m=1000.0), east(0, north_m=1000.0), east(0)]
    route = Route(corners)
    assert route.project(*corners[0]).along_m == pytest.approx(0.0, abs=1.0)
    walk = [east(k / 4) for k in range(4)] + [east(1, north_m=250.0 * k) for k in range(4)] \
        + [east(1 - k / 4, north_m=1000.0) for k in range(4)] \
        + [east(0, north_m=1000.0 - 250.0 * k) for k in range(5)]
    progress = follow(route, walk, step_s=15.0)
    assert progress == sorted(progress)
    assert progress[-1] == pytest.approx(route.length_m, rel=1e-3)


def test_a_figure_eight_crossing_is_passed_where_the_device_is_on_it() -> None:
    # west-east through (0, 0) first, then a loop north, then south-north through it again
    route = Route([east(-2), east(2), east(2, north_m=2000.0), east(0, north_m=2000.0),
                   east(0, north_m=-2000.0)])
    first = route.project(*east(0), previous_m=1900.0, expected_m=2000.0, reach_m=2000.0)
    assert first.along_m == pytest.approx(2000.0, abs=5.0)
    second = route.project(*east(0), previous_m=9900.0, expected_m=10_000.0, reach_m=2000.0)
    assert second.along_m == pytest.approx(10_000.0, abs=5.0)


def test_a_device_that_turns_round_is_followed_backwards() -> None:
    route = Route([east(k) for k in range(21)])
    fixes = [east(k) for k in range(12)] + [east(k) for k in range(10, 4, -1)]
    progress = follow(route, fixes)
    assert progress[11] == pytest.approx(11_000.0, abs=5.0)
    assert progress[-1] == pytest.approx(5_000.0, abs=5.0)
    assert progress[11:] == sorted(progress[11:], reverse=True)


def test_no_jump_to_the_other_pass_of_an_out_and_back_within_gps_noise() -> None:
    out = [east(k) for k in range(31)]
    route = Route(out + out[-2::-1])  # 30 km out, 30 km back
    # at 25 km on the way back (along 35 km), noisy fixes beside the road
    here = route.project(*east(25, north_m=40.0), previous_m=34_500.0, expected_m=35_000.0,
                         reach_m=5_000.0)
    assert here.along_m == pytest.approx(35_000.0, abs=50.0)


def test_a_device_seen_clearly_back_on_the_route_jumps_there() -> None:
    route = Route([east(k) for k in range(31)])
    # last seen at km 25; now on the road at km 3, farther than it could have driven
    found = route.project(*east(3, north_m=10.0), previous_m=25_000.0, expected_m=25_500.0,
                          reach_m=2_000.0)
    assert found.along_m == pytest.approx(3_000.0, abs=20.0)


def test_off_route_keeps_the_progress_near_where_it_was() -> None:
    out = [east(k) for k in range(11)]
    route = Route(out + out[-2::-1])
    # 3 km off the road near km 4 on the way back (along 16 km): nothing on route in reach
    found = route.project(*east(4, north_m=3000.0), previous_m=15_800.0, expected_m=16_000.0,
                          reach_m=2_000.0)
    assert found.along_m == pytest.approx(16_000.0, abs=200.0)
    assert found.offset_m == pytest.approx(3000.0, rel=0.01)


def test_routes_from_geojson_and_refusals() -> None:
    route = Route.from_geojson({"type": "LineString", "coordinates": [[13.0, 52.0], [13.1, 52.0]]})
    assert route.end == (52.0, 13.1)
    feature = {"type": "Feature", "geometry": {"type": "LineString",
                                               "coordinates": [[13.0, 52.0], [13.1, 52.0]]}}
    assert Route.from_geojson(feature).length_m == route.length_m
    for bad in ({"type": "Point", "coordinates": [13.0, 52.0]},
                {"type": "LineString", "coordinates": [[13.0, 52.0]]},
                {"type": "LineString", "coordinates": [[13.0, 52.0], [13.0, 52.0]]},
                {"type": "LineString", "coordinates": [[13.0, 95.0], [13.0, 52.0]]},
                {"type": "LineString", "coordinates": [["a", 52.0], [13.0, 52.0]]},
                {"type": "LineString", "coordinates": "nope"}, None):
        with pytest.raises(RouteError):
            Route.from_geojson(bad)


def test_across_the_antimeridian() -> None:
    route = Route([(10.0, 179.9), (10.0, -179.9)])
    assert route.length_m == pytest.approx(21_900.0, rel=0.01)
    found = route.project(10.001, 180.0)
    assert found.along_m == pytest.approx(route.length_m / 2, rel=0.01)
    assert found.offset_m == pytest.approx(111.0, rel=0.02)


def test_pieces_cover_the_route() -> None:
    route = Route([east(0), east(12)])
    starts, mids = route.pieces(5000.0)
    assert starts[0] == 0.0 and starts[-1] == pytest.approx(route.length_m)
    assert len(mids) == len(starts) - 1 == 2
    assert mids[0][1] == pytest.approx(east(3)[1], abs=1e-6)
