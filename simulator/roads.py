"""Routing over the road network of ``roaddata``: fastest path between two places.

A route is the chain of real places (``roaddata.CORRIDORS``) that the fastest path by
nominal truck speed passes, densified every few kilometres with a gentle, deterministic
sideways wiggle and its corners cut (Chaikin), so that it curves like a road between
towns instead of running in straight chords with sharp turns. Every segment carries its
road class, which sets the speed trucks drive.
"""

from __future__ import annotations

import heapq
import math
import zlib
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise

from shiptrack.errors import InputError
from simulator.geo import LatLon, Polyline, destination_point, haversine_m, initial_bearing_deg
from simulator.roaddata import CORRIDORS, PLACES

# Truck speeds per road class, km/h: (lowest, highest) cruise target.
SPEED_BANDS_KMH: dict[str, tuple[float, float]] = {
    "motorway": (78.0, 89.0),
    "trunk": (60.0, 75.0),
    "urban": (30.0, 50.0),
}
NOMINAL_KMH = {name: (lo + hi) / 2 for name, (lo, hi) in SPEED_BANDS_KMH.items()}
URBAN_M = 6_000.0  # the first and last kilometres of a route run through the city
DENSIFY_M = 3_000.0
WIGGLE_SHARE = 0.012  # sideways amplitude as a share of the edge's length
WIGGLE_MAX_M = 1_500.0


class NoRoute(InputError):
    """The two places are not connected by the network."""


@dataclass(frozen=True)
class Route:
    origin: str
    destination: str
    path: Polyline
    classes: tuple[str, ...]  # one per segment of ``path``
    via: tuple[str, ...]  # the places passed, origin and destination included
    refs: tuple[str, ...]  # the roads taken, in order

    def class_at(self, along_m: float) -> str:
        if along_m < URBAN_M or along_m > self.path.length_m - URBAN_M:
            return "urban"
        i = bisect_right(self.path.cumulative_m, along_m) - 1
        return self.classes[max(0, min(i, len(self.classes) - 1))]

    def nominal_duration_s(self) -> float:
        """Driving time at each class's nominal speed, without stops or traffic."""
        total, cum = 0.0, self.path.cumulative_m
        urban = min(2 * URBAN_M, self.path.length_m)
        for cls, a, b in zip(self.classes, cum, cum[1:], strict=False):
            total += (b - a) / (NOMINAL_KMH[cls] / 3.6)
        rural_share = (self.path.length_m - urban) / max(1.0, self.path.length_m)
        return total * rural_share + urban / (NOMINAL_KMH["urban"] / 3.6)

    def reversed(self) -> Route:
        return Route(self.destination, self.origin, self.path.reversed(),
                     self.classes[::-1], self.via[::-1], self.refs[::-1])

    def geojson(self) -> dict[str, object]:
        """The route as a GeoJSON LineString (``[lon, lat]`` pairs)."""
        coords = [[round(lon, 6), round(lat, 6)] for lat, lon in self.path.points]
        return {"type": "LineString", "coordinates": coords}


def _wiggle(a: LatLon, b: LatLon, key: str) -> list[LatLon]:
    """Points from ``a`` to ``b`` (``b`` excluded) every ~``DENSIFY_M``, swinging sideways."""
    length = haversine_m(a, b)
    n = max(1, math.ceil(length / DENSIFY_M))
    amplitude = min(WIGGLE_MAX_M, WIGGLE_SHARE * length)
    waves = max(1, round(length / 25_000))
    phase = (zlib.crc32(key.encode()) % 628) / 100
    bearing = initial_bearing_deg(a, b)
    out = [a]
    for i in range(1, n):
        f = i / n
        on_line = destination_point(a, bearing, length * f)
        side = amplitude * math.sin(math.pi * f) * math.sin(2 * math.pi * waves * f + phase)
        out.append(destination_point(on_line, initial_bearing_deg(on_line, b) + 90.0, side))
    return out


class RoadNetwork:
    """An undirected graph of places joined by road edges, with fastest-path routing."""

    def __init__(
        self,
        places: Mapping[str, LatLon] = PLACES,
        corridors: Sequence[tuple[str, str, Sequence[str]]] = CORRIDORS,
    ) -> None:
        self.places = dict(places)
        self.edges: dict[str, dict[str, tuple[float, str, str]]] = {}
        for ref, cls, names in corridors:
            for a, b in pairwise(names):
                metres = haversine_m(self.places[a], self.places[b]) * 1.03
                seconds = metres / (NOMINAL_KMH[cls] / 3.6)
                self.edges.setdefault(a, {})[b] = (seconds, ref, cls)
                self.edges.setdefault(b, {})[a] = (seconds, ref, cls)

    def __contains__(self, name: object) -> bool:
        return name in self.edges

    def fastest(self, origin: str, destination: str) -> list[str]:
        """Places on the fastest path (Dijkstra over nominal driving time)."""
        if origin not in self or destination not in self:
            raise NoRoute(f"no road from {origin} to {destination}")
        best: dict[str, float] = {origin: 0.0}
        previous: dict[str, str] = {}
        queue = [(0.0, origin)]
        while queue:
            cost, here = heapq.heappop(queue)
            if here == destination:
                break
            if cost > best[here]:
                continue
            for there, (seconds, _, _) in self.edges[here].items():
                if cost + seconds < best.get(there, math.inf):
                    best[there] = cost + seconds
                    previous[there] = here
                    heapq.heappush(queue, (cost + seconds, there))
        if destination not in best:
            raise NoRoute(f"no road from {origin} to {destination}")
        names = [destination]
        while names[-1] != origin:
            names.append(previous[names[-1]])
        return names[::-1]

    def route(self, origin: str, destination: str) -> Route:
        if origin == destination:
            raise NoRoute("origin and destination are the same place")
        names = self.fastest(origin, destination)
        points: list[LatLon] = []
        classes: list[str] = []
        refs: list[str] = []
        for a, b in pairwise(names):
            _, ref, cls = self.edges[a][b]
            key = "|".join(sorted((a, b)))
            pa, pb = self.places[a], self.places[b]
            piece = _wiggle(pa, pb, key) if a < b else [*_wiggle(pb, pa, key)[1:], pa][::-1]
            points.extend(piece)
            classes.extend([cls] * len(piece))
            if not refs or refs[-1] != ref:
                refs.append(ref)
        points.append(self.places[destination])
        points, classes = _cut_corners(points, classes)
        return Route(origin, destination, Polyline.of(points), tuple(classes), tuple(names),
                     tuple(refs))


def _cut_corners(points: list[LatLon], classes: list[str]) -> tuple[list[LatLon], list[str]]:
    """One round of Chaikin's corner cutting: junctions become curves a truck can drive."""
    out, out_classes = [points[0]], []
    for (a, b), cls in zip(pairwise(points), classes, strict=True):
        for f in (0.25, 0.75):
            out.append((a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])))
            out_classes.append(cls)
    out.append(points[-1])
    out_classes.append(classes[-1])
    return out, out_classes


@cache
def default_network() -> RoadNetwork:
    return RoadNetwork()


@cache
def road_route(origin: str, destination: str) -> Route:
    """The fastest route on the built-in network (cached: legs share their routes)."""
    return default_network().route(origin, destination)
