"""How long past trips took from here to there: the history of similar trips.

A *lane* is a pair of H3 cells, where a device was and where its trip ended, at two
resolutions: ``FINE_RES`` (8, cells of ~0.7 km²: a bus stop, a berth, a depot) where data
is dense, and ``COARSE_RES`` (6, ~36 km²: a district, a port) where it is not. Each
keeps the time it took from there to the arrival for the most recent ``KEEP`` visits,
learned only from trips that have arrived. A route that repeats (a bus line, a ferry, a
regular lane) soon has a fine lane; a one-off trip at least shares coarse ones.
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
LEVELS = (FINE_RES, COARSE_RES)


def lane_keys(lat: float, lon: float, dest_lat: float, dest_lon: float) -> tuple[str, ...]:
    """The lane of each level (``LEVELS``) from a position to a destination."""
    return tuple(f"{h3.latlng_to_cell(lat, lon, r)}>{h3.latlng_to_cell(dest_lat, dest_lon, r)}"
                 for r in LEVELS)


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
