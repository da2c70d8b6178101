"""Where vehicles drive: hubs around an origin and legs (routes) between two hubs.

Between two built-in cities a leg follows the road network (``roads.py``). Between
made-up hubs (an origin far from every built-in city) it falls back to the great circle
with its inner waypoints pushed a little sideways, driven as a trunk road.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from simulator.cities import CITIES, Hub
from simulator.geo import (
    LatLon,
    Polyline,
    destination_point,
    great_circle_path,
    haversine_m,
    initial_bearing_deg,
)
from simulator.roads import NoRoute, Route, default_network, road_route


@dataclass(frozen=True, slots=True)
class Leg:
    origin: Hub
    destination: Hub
    route: Route

    @property
    def path(self) -> Polyline:
        return self.route.path

    def reversed(self) -> Leg:
        return Leg(self.destination, self.origin, self.route.reversed())


def _wiggly_route(rng: random.Random, origin: Hub, destination: Hub) -> Route:
    """The great circle with its inner waypoints pushed a little sideways."""
    length = haversine_m(origin.point, destination.point)
    segments = max(2, min(8, round(length / 40_000)))
    points = great_circle_path(origin.point, destination.point, segments)
    bearing = initial_bearing_deg(origin.point, destination.point)
    for i in range(1, segments):
        taper = math.sin(math.pi * i / segments)
        sideways = max(-0.04, min(0.04, rng.gauss(0.0, 0.015))) * length * taper
        points[i] = destination_point(points[i], bearing + 90.0, sideways)
    return Route(origin.name, destination.name, Polyline.of(points), ("trunk",) * segments,
                 (origin.name, destination.name), ())


def make_leg(rng: random.Random, origin: Hub, destination: Hub) -> Leg:
    """A leg on the road network where both hubs are on it, else a road-like curve."""
    network = default_network()
    if origin.name in network and destination.name in network:
        try:
            return Leg(origin, destination, road_route(origin.name, destination.name))
        except NoRoute:
            pass
    return Leg(origin, destination, _wiggly_route(rng, origin, destination))


def leg_length_m(origin: Hub, destination: Hub) -> float:
    """Road distance where known, else 1.1 times the great-circle distance."""
    network = default_network()
    if origin.name in network and destination.name in network:
        try:
            return road_route(origin.name, destination.name).path.length_m
        except NoRoute:
            pass
    return 1.1 * haversine_m(origin.point, destination.point)


def hubs_near(origin: LatLon, spread_km: float, rng: random.Random) -> tuple[Hub, ...]:
    """Built-in cities within ``spread_km`` of ``origin``; made-up hubs if fewer than 3."""
    spread_m = spread_km * 1000.0
    near = tuple(h for h in CITIES if haversine_m(origin, h.point) <= spread_m)
    if len(near) >= 3:
        return near
    made_up = []
    for i in range(8):
        lat, lon = destination_point(
            origin, rng.uniform(0.0, 360.0), spread_m * rng.uniform(0.2, 1.0)
        )
        made_up.append(Hub(f"hub-{i + 1:02d}", lat, lon))
    return tuple(made_up)
