"""The spatial index: circles and corridors in true metres, at the antimeridian and near
the poles, polygons as drawn, the edge band, and vectorised speed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ingest.fence_index import Fence, FenceIndex
from ingest.tracking_rules import EDGE, IN
from shiptrack import geodesy
from shiptrack.geofences import parse_feature

Floats = np.ndarray[Any, np.dtype[np.float64]]


def fence(fid: str, geometry: dict[str, Any], **props: Any) -> Fence:
    return Fence(fid, fid, parse_feature({"type": "Feature", "geometry": geometry,
                                          "properties": {"name": fid, **props}}))


def classes(index: FenceIndex, lats: Any, lons: Any, margin: float = 1.0) -> list[int]:
    """The class of each point against fence 0 (0: OUT)."""
    lat, lon = np.asarray(lats, dtype=np.float64), np.asarray(lons, dtype=np.float64)
    pairs = index.classify(lat, lon, np.full(len(lat), margin))
    out = [0] * len(lat)
    for f, k, c in zip(pairs.fix.tolist(), pairs.fence.tolist(), pairs.cls.tolist(),
                       strict=True):
        if k == 0:
            out[f] = c
    return out


def ring_at(lat: float, lon: float, dist_m: float, n: int = 16) -> tuple[Floats, Floats]:
    bearings = np.linspace(0.0, 360.0, n, endpoint=False)
    lats, lons = geodesy.destination(lat, lon, bearings, dist_m)
    return lats, (lons + 180.0) % 360.0 - 180.0


def test_destination_agrees_with_haversine() -> None:
    for lat, lon in [(0.0, 0.0), (52.5, 13.4), (78.2, 15.6), (-89.9, 40.0), (10.0, 179.99)]:
        lats, lons = ring_at(lat, lon, 1234.5)
        assert np.allclose(geodesy.haversine_m(lat, lon, lats, lons), 1234.5, atol=1e-3)


@pytest.mark.parametrize(("lat", "lon", "radius"), [
    (0.0, 0.0, 500.0), (52.52, 13.405, 250.0), (60.17, 24.94, 2000.0),
    (78.22, 15.65, 800.0),  # Longyearbyen: a degree of longitude is ~23 km
    (-33.86, 151.21, 50_000.0), (0.0, 180.0, 3000.0), (-16.8, -179.9, 25_000.0),
    (89.9, 10.0, 50_000.0),  # around the north pole
    (-89.95, 120.0, 20_000.0),
])
def test_circles_are_true_metres_everywhere(lat: float, lon: float, radius: float) -> None:
    index = FenceIndex([fence("c", {"type": "Point", "coordinates": [lon, lat]},
                             radius_m=radius)])
    inside_lat, inside_lon = ring_at(lat, lon, radius * 0.99, 36)
    outside_lat, outside_lon = ring_at(lat, lon, radius * 1.01, 36)
    assert classes(index, inside_lat, inside_lon) == [IN] * 36
    assert classes(index, outside_lat, outside_lon) == [0] * 36
    assert classes(index, [lat], [lon]) == [IN]


def test_pole_cap_covers_every_longitude() -> None:
    index = FenceIndex([fence("cap", {"type": "Point", "coordinates": [0.0, 89.8]},
                             radius_m=40_000.0)])
    lons = np.linspace(-180.0, 180.0, 37)
    assert classes(index, np.full(37, 89.99), lons) == [IN] * 37
    assert classes(index, np.full(37, 89.3), lons)[18] == 0  # 56 km from the centre


@pytest.mark.parametrize(("coords", "lat"), [
    ([[13.0, 60.0], [14.0, 60.0]], 60.0),
    ([[179.5, -17.0], [-179.5, -17.0]], -17.0),  # across the antimeridian
])
def test_corridors_are_true_metres(coords: list[list[float]], lat: float) -> None:
    index = FenceIndex([fence("k", {"type": "LineString", "coordinates": coords},
                             buffer_m=1000.0)])
    across = coords[0][0] > 100
    lons = np.array([179.8, -179.8, 180.0, -180.0]) if across else np.array([13.3, 13.7])
    n = len(lons)
    north_in = lat + 970.0 / geodesy.M_PER_DEG
    north_out = lat + 1030.0 / geodesy.M_PER_DEG
    assert classes(index, np.full(n, north_in), lons) == [IN] * n
    assert classes(index, np.full(n, north_out), lons) == [0] * n
    assert classes(index, np.full(n, lat - 970.0 / geodesy.M_PER_DEG), lons) == [IN] * n


def test_antimeridian_seam_is_not_an_edge() -> None:
    index = FenceIndex([fence("c", {"type": "Point", "coordinates": [180.0, 0.0]},
                             radius_m=5000.0)])
    # right at the cut, with a 100 m accuracy band: inside, not "near the edge"
    assert classes(index, [0.0, 0.0, 0.01], [180.0, -179.9999, 179.9999], margin=100.0) == [
        IN, IN, IN]


def test_polygon_edge_band_uses_metres() -> None:
    ring = [[13.0, 52.0], [13.1, 52.0], [13.1, 52.1], [13.0, 52.1], [13.0, 52.0]]
    index = FenceIndex([fence("p", {"type": "Polygon", "coordinates": [ring]})])
    east_edge = 13.1
    per_m = 1.0 / (geodesy.M_PER_DEG * np.cos(np.radians(52.05)))
    lons = [east_edge - 30 * per_m, east_edge - 10 * per_m, east_edge + 10 * per_m,
            east_edge + 30 * per_m]
    assert classes(index, [52.05] * 4, lons, margin=20.0) == [IN, EDGE, EDGE, 0]
    assert classes(index, [52.05] * 4, lons, margin=5.0) == [IN, IN, 0, 0]


def test_many_fences_and_points_vectorised() -> None:
    """The batched index finds exactly the (fix, fence) pairs a brute-force check finds.

    Its speed is measured by ``python -m bench.fence_index``, not asserted here."""
    rng = np.random.default_rng(7)
    fences = [fence(f"c{i}", {"type": "Point", "coordinates": [float(x), float(y)]},
                    radius_m=2000.0)
              for i, (x, y) in enumerate(zip(rng.uniform(0, 20, 2000),
                                             rng.uniform(45, 55, 2000), strict=True))]
    index = FenceIndex(fences)
    n = 5_000
    lats, lons = rng.uniform(45, 55, n), rng.uniform(0, 20, n)
    pairs = index.classify(lats, lons, np.full(n, 10.0))
    found = {(int(f), int(k)) for f, k in zip(pairs.fix, pairs.fence, strict=True)}
    assert found
    expected: set[tuple[int, int]] = set()
    for f in range(n):
        d = geodesy.haversine_m(lats[f], lons[f], index.center_lat, index.center_lon)
        expected.update((f, int(k)) for k in np.nonzero(d <= 1990.0)[0])
    # every fix well inside a circle is found, and nothing found is far outside one
    assert expected <= found
    for f, k in found:
        d = geodesy.haversine_m(lats[f], lons[f], index.center_lat[k], index.center_lon[k])
        assert d <= 2010.0
