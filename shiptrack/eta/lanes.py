"""How long past trips took from here to there: the history of similar trips.

A *lane* is a pair of H3 cells, where a device was and where its trip ended, at two
resolutions: ``FINE_RES`` (8, cells of ~0.7 km²: a bus stop, a berth, a depot) where data
is dense, and ``COARSE_RES`` (6, ~36 km²: a district, a port) where it is not; and an
*approach*: the destination's cell (``APPROACH_RES``) and the distance still to go (a
band of doubling width from ``APPROACH_M``), which arrivals from any direction share.
Each keeps the time it took from there to the arrival for the most recent ``KEEP``
visits, learned only from trips that have arrived. A route that repeats (a bus line, a
ferry, a regular lane) soon has a fine lane; a one-off trip at least shares coarse ones
and the approach to its destination.

``FineSpeeds`` is the moving speed by H3 cell at ``FINE_RES``, from every learned step:
where data is dense, how fast things move right here and at the destination (a harbour,
a city centre), finer than the physical profile's cells.
"""

from __future__ import annotations

import math
import statistics
from collections import OrderedDict
from typing import Any

import h3

FINE_RES = 8
COARSE_RES = 6
KEEP = 24  # visits per lane
MAX_LANES = 200_000  # lanes kept per resolution (least recently taught dropped first)
APPROACH_RES = 7
APPROACH_M = 250.0
LEVELS = (FINE_RES, COARSE_RES, APPROACH_RES)
MIN_FINE_S = 120.0  # moving seconds in a cell before its speed counts


def lane_keys(lat: float, lon: float, dest_lat: float, dest_lon: float, direct_m: float
              ) -> tuple[str, ...]:
    """The lane of each level (``LEVELS``) from a position to a destination."""
    keys = [f"{h3.latlng_to_cell(lat, lon, r)}>{h3.latlng_to_cell(dest_lat, dest_lon, r)}"
            for r in (FINE_RES, COARSE_RES)]
    band = int(math.log2(max(direct_m, APPROACH_M) / APPROACH_M))
    keys.append(f"{h3.latlng_to_cell(dest_lat, dest_lon, APPROACH_RES)}~{band}")
    return tuple(keys)


class Lanes:
    def __init__(self) -> None:
        self.times: list[OrderedDict[str, list[float]]] = [OrderedDict() for _ in LEVELS]

    def add(self, keys: tuple[str, ...], remaining_s: float) -> None:
        for table, key in zip(self.times, keys, strict=True):
            seen = table.pop(key, None) or []
            seen.append(round(remaining_s, 1))
            del seen[:-KEEP]
            table[key] = seen
            if len(table) > MAX_LANES:
                table.popitem(last=False)

    def features(self, keys: tuple[str, ...]) -> list[float]:
        """Per level: log(1 + visits) and the log of their median time left (NaN: none)."""
        out: list[float] = []
        for table, key in zip(self.times, keys, strict=True):
            seen = table.get(key)
            if seen:
                out += [math.log1p(len(seen)), math.log(max(statistics.median(seen), 1.0))]
            else:
                out += [0.0, math.nan]
        return out

    def to_json(self) -> dict[str, Any]:
        return {"levels": list(LEVELS), "times": [dict(t) for t in self.times]}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Lanes:
        lanes = cls()
        if list(obj.get("levels", [])) == list(LEVELS):
            lanes.times = [OrderedDict((k, [float(v) for v in vs]) for k, vs in t.items())
                           for t in obj["times"]]
        return lanes


class FineSpeeds:
    def __init__(self) -> None:
        self.cells: dict[str, list[float]] = {}  # cell -> [metres, seconds] moving

    def add(self, lat: float, lon: float, metres: float, seconds: float) -> None:
        found = self.cells.setdefault(h3.latlng_to_cell(lat, lon, FINE_RES), [0.0, 0.0])
        found[0] += metres
        found[1] += seconds

    def log_kmh(self, lat: float, lon: float) -> float:
        """log km/h moving in the position's cell; NaN while it is not known."""
        found = self.cells.get(h3.latlng_to_cell(lat, lon, FINE_RES))
        if found is None or found[1] < MIN_FINE_S:
            return math.nan
        return math.log(max(3.6 * found[0] / found[1], 0.01))

    def to_json(self) -> dict[str, Any]:
        return {"res": FINE_RES, "cells": {k: [round(v[0], 1), round(v[1], 1)]
                                           for k, v in self.cells.items()}}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> FineSpeeds:
        fine = cls()
        if obj.get("res") == FINE_RES:
            fine.cells = {k: [float(v[0]), float(v[1])] for k, v in obj["cells"].items()}
        return fine
