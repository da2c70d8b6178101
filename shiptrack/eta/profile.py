"""The historical speed profile: how fast devices move, by area cell and hour of week.

Cells are H3 hexagons (resolution 5: about 250 km², edges of ~9 km), grouped into
resolution-3 parents (~12,000 km²). Each (cell, hour of week) keeps the metres moved and
the seconds it took while moving, and each cell the seconds spent in short stops (under
``rests.BREAK_S``: lights, junctions, queues) per metre. Hours are UTC: within one cell
the offset to local time is constant (but for daylight saving), so a cell's rush hour
still lands in one hour of the week.

A lookup shrinks each level towards what is known around it, weighted by metres seen
(``PRIOR_M``): an hour with 2 km of data says little against its cell's other hours, a
new cell inherits its region's pace, a new region the pace everywhere else, and an empty
profile gives the default speed. So the profile degrades to the default profile for
areas it never saw.
"""

from __future__ import annotations

from typing import Any

import h3

CELL_RES = 5
PARENT_RES = 3
PRIOR_M = 10_000.0  # metres of evidence a level's own figure needs to outweigh its parent
DEFAULT_KMH = 65.0  # moving speed where nothing is known (a truck on a mix of roads)
WEEK_S = 7 * 86400
EPOCH_MONDAY_S = 3 * 86400  # 1970-01-01 was a Thursday: Monday 00:00 was 3 days earlier


def cell_of(lat: float, lon: float) -> str:
    return str(h3.latlng_to_cell(lat, lon, CELL_RES))


def hour_of_week(ts: float) -> int:
    """0 = Monday 00:00-01:00 UTC ... 167 = Sunday 23:00-24:00 UTC."""
    return int(((ts + EPOCH_MONDAY_S) % WEEK_S) // 3600)


def _shrunk(metres: float, seconds: float, prior_pace: float) -> float:
    return (seconds + PRIOR_M * prior_pace) / (metres + PRIOR_M)


class SpeedProfile:
    """Moving pace (s/m) by cell and hour of week; short-stop time (s/m) by cell."""

    def __init__(self, default_kmh: float = DEFAULT_KMH) -> None:
        self.default_pace = 3.6 / default_kmh
        self.hours: dict[tuple[str, int], list[float]] = {}  # (cell, how) -> [m, s]
        self.cells: dict[str, list[float]] = {}  # cell -> [m, moving s, stopped s]
        self.parents: dict[str, list[float]] = {}
        self.total = [0.0, 0.0, 0.0]
        self._parent_of: dict[str, str] = {}
        self._cache: dict[tuple[str, int], tuple[float, float]] = {}

    def _parent(self, cell: str) -> str:
        parent = self._parent_of.get(cell)
        if parent is None:
            parent = self._parent_of[cell] = str(h3.cell_to_parent(cell, PARENT_RES))
        return parent

    # -- learning ------------------------------------------------------------------------

    def add_move(self, cell: str, how: int, metres: float, seconds: float) -> None:
        """``metres`` moved in ``seconds`` (no stop among them) in ``cell`` at hour ``how``."""
        if metres <= 0.0 or seconds <= 0.0:
            return
        for sums in (self.hours.setdefault((cell, how), [0.0, 0.0]),
                     self.cells.setdefault(cell, [0.0, 0.0, 0.0]),
                     self.parents.setdefault(self._parent(cell), [0.0, 0.0, 0.0]),
                     self.total):
            sums[0] += metres
            sums[1] += seconds
        self._cache.clear()

    def add_stop(self, cell: str, seconds: float) -> None:
        """A short stop of ``seconds`` in ``cell``."""
        for sums in (self.cells.setdefault(cell, [0.0, 0.0, 0.0]),
                     self.parents.setdefault(self._parent(cell), [0.0, 0.0, 0.0]),
                     self.total):
            sums[2] += seconds
        self._cache.clear()

    # -- lookups -------------------------------------------------------------------------

    def paces(self, cell: str, how: int) -> tuple[float, float]:
        """(moving pace, short-stop pace) in seconds per metre for ``cell`` at ``how``.

        Each level is shrunk towards a prior made of the data *around* it (its parent's
        other cells, the cell's other hours), so no metre of evidence counts twice."""
        key = (cell, how)
        found = self._cache.get(key)
        if found is not None:
            return found
        zero = (0.0, 0.0, 0.0)
        parent = self.parents.get(self._parent(cell), zero)
        own = self.cells.get(cell, zero)
        hour = self.hours.get(key, zero)
        move, stop = self.default_pace, 0.0
        for outer, inner in ((self.total, parent), (parent, own)):
            metres = max(0.0, outer[0] - inner[0])
            move = _shrunk(metres, max(0.0, outer[1] - inner[1]), move)
            stop = _shrunk(metres, max(0.0, outer[2] - inner[2]), stop)
        stop = _shrunk(own[0], own[2], stop)
        move = _shrunk(max(0.0, own[0] - hour[0]), max(0.0, own[1] - hour[1]), move)
        move = _shrunk(hour[0], hour[1], move)
        self._cache[key] = (move, stop)
        return move, stop

    def evidence_m(self, cell: str) -> float:
        """Metres learned in the region (resolution-3 parent) of ``cell``."""
        return self.parents.get(self._parent(cell), (0.0,))[0]

    def pace_at(self, lat: float, lon: float, ts: float) -> float:
        """Moving pace (s/m) at a place and time."""
        return self.paces(cell_of(lat, lon), hour_of_week(ts))[0]

    @property
    def mean_kmh(self) -> float:
        """The moving speed over everything learned (the default speed if nothing is)."""
        return 3.6 / _shrunk(self.total[0], self.total[1], self.default_pace)

    # -- persistence ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "cell_res": CELL_RES, "default_kmh": round(3.6 / self.default_pace, 3),
            "hours": [[c, h, round(m, 1), round(s, 1)] for (c, h), (m, s) in self.hours.items()],
            "cells": {c: [round(v, 1) for v in sums] for c, sums in self.cells.items()},
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SpeedProfile:
        if obj.get("cell_res") != CELL_RES:
            raise ValueError(f"profile cells are not at resolution {CELL_RES}")
        profile = cls(float(obj.get("default_kmh", DEFAULT_KMH)))
        for cell, how, metres, seconds in obj.get("hours", []):
            profile.hours[(cell, int(how))] = [float(metres), float(seconds)]
        for cell, sums in obj.get("cells", {}).items():
            profile.cells[cell] = [float(v) for v in sums]
            parent = profile.parents.setdefault(profile._parent(cell), [0.0, 0.0, 0.0])
            for i in range(3):
                parent[i] += float(sums[i])
                profile.total[i] += float(sums[i])
        return profile


def piece_seconds(profile: SpeedProfile, cell: str, ts: float, metres: float,
                  speed_factor: float = 1.0) -> float:
    """Seconds to cover ``metres`` of ``cell`` starting at ``ts``: moving (at the profile's
    pace times ``1 / speed_factor``) plus the cell's usual short stops."""
    move, stop = profile.paces(cell, hour_of_week(ts))
    return metres * (move / max(speed_factor, 0.05) + stop)

