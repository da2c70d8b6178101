"""The last step of an ETA: a blend of the candidate predictions, weighted by how each has
done on past trips at this stage of a trip (online stacking).

Four candidates predict the time left: the physical model, the learned correction (the
physical model until one is fitted), and the two naive baselines, the fleet's mean trip
speed and the trip's own average speed so far (the fleet's before the trip has one).
Each estimate made during a trip that has since arrived leaves its candidates and the
actual time left, filed by the share of the trip done (tenths, by the median of the
candidates' time left, so no single candidate decides how far along a trip is). A bin's
weights come from the records of the bin and its two neighbours: each candidate's mean
absolute error in seconds (the ETA's own measure) relative to the best one's, through
exponential weights ``exp(-BETA * mae / best_mae)`` (a candidate 10 % worse than the
best gets e^-3, 5 %, of its weight). So on a thin history, where the correction is still worse
than the trip's own speed late in a trip, the blend leans on that baseline, and it moves
to the correction as the correction earns it. Soft weights, not a choice of the best nor
a fitted convex combination: on tens of trips with heavy-tailed errors both of those
follow the noise (measured in docs/ETA.md, "Cold start").

Shrinkage: while a bin and its neighbours hold fewer than ``MIN_RECORDS`` records, the
weights are ``PRIOR``: the physical model alone (as without history, in ingest too).
The learned candidate gets weight only from records where a correction was fitted, and
only once there are enough of those, so a correction fitted a moment ago is not judged
by the physical model's record. Everything is learned from arrived trips only (the
replay feeds ``add`` after the arrival), so the evaluation stays prequential.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

CANDIDATES = ("physical", "learned", "fleet", "own")
LEARNED = CANDIDATES.index("learned")
PRIOR = (0.5, 0.0, 0.0, 0.5)  # before enough records: half physical, half the trip's own
PRIOR_START = (1.0, 0.0, 0.0, 0.0)  # ... and at the start, where it has none: physical
MAX_RECORDS = 1_500  # per share bin
MIN_RECORDS = 60  # records of a bin and its neighbours for their own weights
EDGES = (1e-9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # bins of the share done
BETA = 30.0  # how sharply a candidate's weight falls with its error relative to the best


def candidates(predicted_s: float, learned_s: float | None, fleet_s: float,
               own_s: float | None) -> tuple[float, float, float, float]:
    """The four predictions of the time left, seconds (``CANDIDATES``' order); NaN for a
    learned one that does not exist yet; the fleet's for a trip without its own speed."""
    return (predicted_s, math.nan if learned_s is None else learned_s, fleet_s,
            fleet_s if own_s is None else own_s)


def _weights(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Exponential weights by each candidate's mean absolute error relative to the best's:
    ``exp(-BETA * (mae / best_mae))``, normalised (one 10 % worse than the best gets
    e^-3 of its weight)."""
    mae = np.abs(x - y[:, None]).mean(axis=0)
    score = -BETA * mae / max(float(mae.min()), 1e-9)
    w = np.exp(score - score.max())
    return np.asarray(w / w.sum(), dtype=np.float64)


def share_bin(elapsed_s: float, cands: Sequence[float]) -> int:
    """The bin of the share of the trip done, by the median of the candidates' time left
    (no single candidate's view of how far along the trip is)."""
    known = sorted(c for c in cands if not math.isnan(c))
    n = len(known)
    left = (known[(n - 1) // 2] + known[n // 2]) / 2.0
    total = elapsed_s + max(left, 0.0)
    return bisect.bisect_left(EDGES, elapsed_s / total if total > 0 else 0.0)


class Stack:
    """The records per share bin and the weights they give (cached until a new record)."""

    def __init__(self) -> None:
        bins = len(EDGES) + 1
        self.records: list[deque[tuple[float, ...]]] = [
            deque(maxlen=MAX_RECORDS) for _ in range(bins)]
        self._weights: list[NDArray[np.float64] | None] = [None] * bins

    def add(self, cands: Sequence[float], elapsed_s: float, actual_s: float) -> None:
        """An estimate's candidates, once its trip has arrived after ``actual_s``."""
        b = share_bin(elapsed_s, cands)
        self.records[b].append((*cands, actual_s))
        self._weights[b] = None

    def weights(self, b: int) -> NDArray[np.float64]:
        found = self._weights[b]
        if found is None:
            found = self._fit(b)
            self._weights[b] = found
        return found

    def blend(self, cands: Sequence[float], elapsed_s: float) -> float:
        """The blended time left, seconds."""
        w = self.weights(share_bin(elapsed_s, cands))
        x = list(cands)
        if math.isnan(x[LEARNED]):
            x[LEARNED] = x[0]  # no correction: weight meant for it goes to the physical model
        return sum(v * float(wi) for v, wi in zip(x, w, strict=True))

    def _fit(self, b: int) -> NDArray[np.float64]:
        pool = self._pool(b)
        if len(pool) < MIN_RECORDS:
            return np.asarray(PRIOR_START if b == 0 else PRIOR, dtype=np.float64)
        a = np.asarray(pool, dtype=np.float64)
        x, y = a[:, :-1], a[:, -1]
        learned = ~np.isnan(x[:, LEARNED])
        if learned.sum() >= MIN_RECORDS:
            return _weights(x[learned], y[learned])
        others = [i for i in range(len(CANDIDATES)) if i != LEARNED]
        w = np.zeros(len(CANDIDATES))
        w[others] = _weights(x[:, others], y)
        return w

    def _pool(self, b: int) -> list[tuple[float, ...]]:
        """The records that weigh for bin ``b``: its own and its neighbours', else those of
        every bin after the start (the start, where the trip has no speed of its own yet,
        learns from the start only)."""
        if b == 0:
            return list(self.records[0])
        pool = [r for records in self.records[max(b - 1, 1):b + 2] for r in records]
        if len(pool) < MIN_RECORDS:
            pool = [r for records in self.records[1:] for r in records]
        return pool

    def to_json(self) -> list[list[list[float | None]]]:
        return [[[None if math.isnan(v) else round(v, 1) for v in r] for r in records]
                for records in self.records]

    @classmethod
    def from_json(cls, obj: Any) -> Stack:
        stack = cls()
        for records, saved in zip(stack.records, obj or [], strict=False):
            records.extend(tuple(math.nan if v is None else float(v) for v in r)
                           for r in saved)
        return stack
