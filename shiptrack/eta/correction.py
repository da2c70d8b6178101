"""The learned correction: gradient boosting on top of the physical model, with
conformalised quantile intervals.

Three LightGBM models with quantile objectives learn the 10th, 50th and 90th percentiles
of ``log(actual time left / physical prediction)`` from ``features.FEATURES``. The
median moves the point ETA (the conditional median is what minimises the mean absolute
error, and it survives the log); the outer two bound the 80 % interval. The interval is
then *conformalised* (conformalised quantile regression, Romano et al. 2019): the errors
of the model's own earlier out-of-sample predictions, filed by how much of the trip was
done (``SHARE_EDGES``), widen or narrow each end until it held 80 % of past arrivals
there, and move the median by what it still got wrong. Scores come only from predictions
made before their trip arrived, so they say how the model does on trips it has not seen.

``Learner`` keeps what the replay (or ``eta-learn``) teaches: a bounded set of recent
samples, the conformal scores, and when the models are due to be refitted.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from typing import Any

import numpy as np

from shiptrack.eta.features import FEATURES

QUANTILES = (0.1, 0.5, 0.9)
SHARE_EDGES = (1e-9, 0.15, 0.4, 0.65)  # bins of the share done: the start, then by time
MAX_ROWS = 200_000  # most recent samples a fit uses
MAX_SCORES = 1_500  # conformal scores kept per bin
MIN_SCORES = 60
FIRST_FIT_TRIPS = 40  # trips learned before the first fit
REFIT_GROWTH = 0.1  # refit when the trips learned grew by this share since the last fit
REFIT_MOST_TRIPS = 500  # ... or by this many
FLOOR_S = 30.0
PARAMS: dict[str, Any] = {
    "objective": "quantile", "learning_rate": 0.06, "num_leaves": 31,
    "min_data_in_leaf": 40, "feature_fraction": 0.9, "bagging_fraction": 0.8,
    "bagging_freq": 1, "lambda_l2": 1.0, "num_threads": 1, "deterministic": True,
    "seed": 7, "verbose": -1,
}
ROUNDS = 150


def target(actual_s: float, predicted_s: float) -> float:
    return math.log(max(actual_s, FLOOR_S) / max(predicted_s, FLOOR_S))


def share_bin(share: float) -> int:
    return bisect.bisect_left(SHARE_EDGES, share)


class Correction:
    """The fitted models (LightGBM boosters) and the conformal scores."""

    def __init__(self, models: list[Any]) -> None:
        self.models = models
        bins = len(SHARE_EDGES) + 1
        self.scores: list[deque[tuple[float, float, float]]] = [
            deque(maxlen=MAX_SCORES) for _ in range(bins)]
        self._offsets: list[tuple[float, float, float] | None] = [None] * bins

    def raw(self, row: list[float]) -> tuple[float, float, float]:
        """The three quantiles of the log ratio, before conformalising."""
        x = np.asarray([row], dtype=np.float64)
        lo, mid, hi = (float(m.predict(x, num_threads=1)[0]) for m in self.models)
        return lo, mid, hi

    def band(self, raw: tuple[float, float, float], share: float
             ) -> tuple[float, float, float]:
        """(low, median, high) log ratios, conformalised for the share done."""
        lo, mid, hi = raw
        d_lo, d_mid, d_hi = self._offset(share_bin(share))
        mid = mid + d_mid
        return min(lo - d_lo, mid), mid, max(hi + d_hi, mid)

    def score(self, raw: tuple[float, float, float], share: float, y: float) -> None:
        """A past out-of-sample prediction ``raw`` whose outcome was ``y``."""
        b = share_bin(share)
        self.scores[b].append((raw[0] - y, y - raw[1], y - raw[2]))
        self._offsets[b] = None

    def _offset(self, b: int) -> tuple[float, float, float]:
        found = self._offsets[b]
        if found is None:
            pool: list[tuple[float, float, float]] = list(self.scores[b])
            if len(pool) < MIN_SCORES:
                pool = [s for scores in self.scores for s in scores]
            if len(pool) < MIN_SCORES:
                found = (0.0, 0.0, 0.0)
            else:
                a = np.asarray(pool)
                found = (float(np.quantile(a[:, 0], 1.0 - QUANTILES[0])),
                         float(np.median(a[:, 1])),
                         float(np.quantile(a[:, 2], QUANTILES[2])))
            self._offsets[b] = found
        return found

    def to_json(self) -> dict[str, Any]:
        return {"features": list(FEATURES), "models": [m.model_to_string() for m in self.models],
                "scores": [[[round(v, 4) for v in s] for s in scores] for scores in self.scores]}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Correction | None:
        """None when it was made for other features (an older history)."""
        if list(obj.get("features", [])) != list(FEATURES):
            return None
        import lightgbm

        correction = cls([lightgbm.Booster(model_str=s) for s in obj["models"]])
        for scores, saved in zip(correction.scores, obj.get("scores", []), strict=False):
            scores.extend((float(a), float(b), float(c)) for a, b, c in saved)
        return correction


def fit(rows: list[list[float]], ys: list[float]) -> list[Any]:
    """Three quantile boosters over these samples."""
    import lightgbm

    x, y = np.asarray(rows, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    models = []
    for q in QUANTILES:
        data = lightgbm.Dataset(x, y, feature_name=list(FEATURES),
                                free_raw_data=True, params={"verbose": -1})
        models.append(lightgbm.train({**PARAMS, "alpha": q}, data, num_boost_round=ROUNDS))
    return models


class Learner:
    """Samples from arrived trips, and when to refit."""

    def __init__(self) -> None:
        self.rows: deque[list[float]] = deque(maxlen=MAX_ROWS)
        self.ys: deque[float] = deque(maxlen=MAX_ROWS)
        self.trips = 0
        self.fitted_at = 0  # trips learned at the last fit

    def add(self, row: list[float], y: float) -> None:
        self.rows.append(row)
        self.ys.append(y)

    def trip_done(self) -> None:
        self.trips += 1

    def due(self) -> bool:
        grown = self.trips - self.fitted_at
        if self.fitted_at == 0:
            return self.trips >= FIRST_FIT_TRIPS
        return grown >= min(REFIT_MOST_TRIPS, max(1.0, REFIT_GROWTH * self.fitted_at))

    def refit(self, previous: Correction | None) -> Correction:
        """New models; the conformal scores carry over (they are refreshed as new trips
        arrive)."""
        correction = Correction(fit(list(self.rows), list(self.ys)))
        if previous is not None:
            correction.scores = previous.scores
        self.fitted_at = self.trips
        return correction
