"""Where vehicles drive: hubs around an origin and legs (paths) between two hubs.

For now a leg is the great circle between its hubs with a few waypoints pushed sideways
to look like a road; a road-network router can replace ``make_leg`` later.
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


@dataclass(frozen=True, slots=True)
class Leg:
    origin: Hub
    destination: Hub
    path: Polyline

    def reversed(self) -> Leg:
        return Leg(self.destination, self.origin, self.path.reversed())


def make_leg(rng: random.Random, origin: Hub, destination: Hub) -> Leg:
    """A road-like path: the great circle with its inner waypoints pushed a little sideways."""
    length = haversine_m(origin.point, destination.point)
    segments = max(2, min(8, round(length / 40_000)))
    points = great_circle_path(origin.point, destination.point, segments)
    bearing = initial_bearing_deg(origin.point, destination.point)
    for i in range(1, segments):
        taper = math.sin(math.pi * i / segments)
        sideways = max(-0.04, min(0.04, rng.gauss(0.0, 0.015))) * length * taper
        points[i] = destination_point(points[i], bearing + 90.0, sideways)
    return Leg(origin, destination, Polyline.of(points))


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
