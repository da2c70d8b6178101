"""The ETA interval, calibrated on history: how wrong past ETAs were, and by how much.

Each past prediction leaves a residual ``log(actual remaining time / predicted remaining
time)``, filed under its *kind* and how much time was predicted to remain (``EDGES_H``:
being 10 % off means minutes near the end and hours at the start, and a skipped break
weighs more in a short remainder). The kind (``KINDS``) tells predictions of different
certainty apart: whether the device is standing in a stop (whose end is the main
unknown), and whether it is a toss-up that a break, or a rest, falls before the arrival
(``rests.RestModel.doubt``; then the outcome is two-humped and the interval must span
both humps, elsewhere it need not).

For a new prediction the residuals of its kind and bin give empirical quantiles: the
``(1 - coverage) / 2`` and ``(1 + coverage) / 2`` ones bound the interval (80 %: the 10th
and 90th percentiles), the median can correct the point ETA for a bias the model showed.
A bin with fewer than ``MIN_SAMPLES`` residuals borrows its neighbours', then a plainer
kind's (``fallbacks``); an empty calibration uses ``DEFAULT_BAND`` (-15 % to +35 %).
"""

from __future__ import annotations

import bisect
import math
from typing import Any

import numpy as np

EDGES_H = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)  # bin upper edges, hours predicted to remain
MIN_SAMPLES = 40
MAX_SAMPLES = 300  # per bin: the most recent ones (the model and the fleet change)
FLOOR_S = 120.0  # remaining times are floored here before taking logs
DEFAULT_BAND = (math.log(0.85), 0.0, math.log(1.35))
KINDS = ("moving", "moving-break", "moving-rest", "stopped", "stopped-break", "stopped-rest")


MAX_REACH = 1  # bins either side a sparse bin borrows from, before another kind's


def fallbacks(kind: str) -> list[tuple[str, ...]]:
    """Whose residuals a sparse kind borrows, in order: its own, then without the doubt
    ("stopped-rest" -> "stopped"), then "moving", then every kind."""
    chain = [(kind,), (kind.split("-")[0],), ("moving",), KINDS]
    return [kinds for i, kinds in enumerate(chain) if kinds not in chain[:i]]


def kind_of(stopped: bool, doubt: str) -> str:
    """``doubt``: "", "break" or "rest" (``rests.RestModel.doubt``)."""
    kind = "stopped" if stopped else "moving"
    return f"{kind}-{doubt}" if doubt else kind


class Calibration:
    def __init__(self, coverage: float = 0.8) -> None:
        if not 0.0 < coverage < 1.0:
            raise ValueError("coverage must be between 0 and 1")
        self.coverage = coverage
        self.bins: dict[str, list[list[float]]] = {
            kind: [[] for _ in range(len(EDGES_H) + 1)] for kind in KINDS}
        self._cache: dict[tuple[str, int], tuple[float, float, float]] = {}

    @staticmethod
    def bin_of(predicted_s: float) -> int:
        return bisect.bisect_left(EDGES_H, predicted_s / 3600.0)

    def add(self, kind: str, predicted_s: float, actual_s: float) -> None:
        """A past prediction of ``predicted_s`` remaining that turned out ``actual_s``."""
        residuals = self.bins[kind][self.bin_of(predicted_s)]
        residuals.append(math.log(max(actual_s, FLOOR_S) / max(predicted_s, FLOOR_S)))
        if len(residuals) > MAX_SAMPLES:
            del residuals[: len(residuals) - MAX_SAMPLES]
        self._cache.clear()

    def __len__(self) -> int:
        return sum(len(b) for bins in self.bins.values() for b in bins)

    def band(self, kind: str, predicted_s: float) -> tuple[float, float, float]:
        """(low, median, high) log-ratio quantiles for a prediction of ``predicted_s``."""
        key = (kind, self.bin_of(predicted_s))
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = self._quantiles(*key)
        return found

    def knows(self, kind: str, predicted_s: float) -> bool:
        """Whether the kind's own residuals (its bin and the next) are enough."""
        b = self.bin_of(predicted_s)
        return sum(len(self.bins[kind][near]) for near in range(b - MAX_REACH, b + MAX_REACH + 1)
                   if 0 <= near <= len(EDGES_H)) >= MIN_SAMPLES

    def _quantiles(self, kind: str, b: int) -> tuple[float, float, float]:
        """Quantiles of the kind's bin, widened to its neighbours while sparse, then
        those of the plainer kinds (``fallbacks``): never the toss-ups' for a clear case."""
        for kinds in fallbacks(kind):
            for reach in range(MAX_REACH + 1):
                pool = [r for k in kinds for near in range(b - reach, b + reach + 1)
                        if 0 <= near <= len(EDGES_H) for r in self.bins[k][near]]
                if len(pool) >= MIN_SAMPLES:
                    tail = (1.0 - self.coverage) / 2.0
                    q = np.quantile(np.asarray(pool), [tail, 0.5, 1.0 - tail])
                    return float(q[0]), float(q[1]), float(q[2])
        return DEFAULT_BAND

    def to_json(self) -> dict[str, Any]:
        return {"coverage": self.coverage, "edges_h": list(EDGES_H),
                "bins": {k: [[round(r, 4) for r in b] for b in bins]
                         for k, bins in self.bins.items()}}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Calibration:
        calibration = cls(float(obj.get("coverage", 0.8)))
        if list(obj.get("edges_h", EDGES_H)) == list(EDGES_H):
            for kind, bins in obj.get("bins", {}).items():
                if kind in calibration.bins:
                    calibration.bins[kind] = [[float(r) for r in b] for b in bins]
        return calibration
