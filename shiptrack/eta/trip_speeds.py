"""The fleet's mean trip speed by trip length: long trips take the fast roads.

A taxi's 30 km fare runs on the expressway at 70 km/h while its 3 km ones crawl through
the centre at 20: one mean trip speed for the fleet (the ``constant speed`` baseline) is
wrong for both. Finished trips are filed by length in doublings from ``MIN_M`` (under
1 km, 1-2, 2-4, ... km); a bin's speed is its metres over its seconds, shrunk towards the
fleet's mean trip speed by ``PRIOR_M`` metres of evidence, so a bin with one short trip
leans on the fleet and one with many stands on its own. Stops are included, as in the
fleet's mean: these are door-to-door speeds.
"""

from __future__ import annotations

import math
from typing import Any

MIN_M = 500.0  # the first bin: trips under twice this
BINS = 12  # up to MIN_M * 2 ** BINS (2,048 km); longer trips in the last bin
PRIOR_M = 20_000.0  # metres of evidence a bin needs to outweigh the fleet's mean


def length_bin(length_m: float) -> int:
    return min(BINS - 1, int(math.log2(max(length_m, MIN_M) / MIN_M)))


class TripSpeeds:
    """Metres and seconds of finished trips per length bin."""

    def __init__(self) -> None:
        self.metres = [0.0] * BINS
        self.seconds = [0.0] * BINS

    def add(self, road_m: float, duration_s: float) -> None:
        if road_m > 0.0 and duration_s > 0.0:
            b = length_bin(road_m)
            self.metres[b] += road_m
            self.seconds[b] += duration_s

    def speed_ms(self, length_m: float, fleet_ms: float) -> float:
        """Door-to-door speed (m/s) of a trip ``length_m`` long, shrunk to ``fleet_ms``."""
        b = length_bin(length_m)
        return (self.metres[b] + PRIOR_M) / (self.seconds[b] + PRIOR_M / max(fleet_ms, 0.1))

    def to_json(self) -> list[list[float]]:
        return [[round(m, 1), round(s, 1)] for m, s in zip(self.metres, self.seconds,
                                                             strict=True)]

    @classmethod
    def from_json(cls, obj: Any) -> TripSpeeds:
        speeds = cls()
        for b, (m, s) in enumerate((obj or [])[:BINS]):
            speeds.metres[b], speeds.seconds[b] = float(m), float(s)
        return speeds
