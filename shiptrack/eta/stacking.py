"""The last step of an ETA: a blend of the candidate predictions, weighted by how each has
done on past trips at this stage of a trip (online stacking).

Five candidates predict the time left: the physical model, the learned correction (the
physical model until one is fitted), the fleet's mean trip speed for trips of this length
(``trip_speeds``), and the two naive baselines, the fleet's mean trip
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

Shrinkage by sample count: a candidate that is not a baseline (the physical model, the
correction) is judged by an upper bound of its error, ``mae + Z * se``, where ``se`` is
the standard error of its per-record difference from the better baseline's error; so on
few records it has to be clearly better than that baseline to take weight from it, and
with many records it is judged by its mean error alone. While a bin and its neighbours
hold fewer than ``MIN_RECORDS`` records, the weights are ``PRIOR`` (``PRIOR_START`` at
the start). ``Z`` is 0 by default: measured, the bound cost more than it saved.

The interval is conformalised around what is output (split conformal, the two ends
apart): each record also keeps the blend it gave and the interval it had before this
step (the correction's, or the physical model's calibration, moved by the blend); the
``1 - TAIL`` quantiles (at split conformal's finite-sample level, ``conformal_level``)
of how far the arrival fell below its low end and above its high end, relative to the
blend, move each end for the same share bin, so the interval held ``1 - 2 * TAIL`` of
past arrivals there whatever the blend did to it. Like the weights, the offsets come
from records made with a correction once there are ``MIN_SCORES`` of those: the errors
of the first trips, before any correction, are wider than today's and made later
intervals too wide (820 taxi trips in Porto: 0.86-0.87 at three checkpoints with them,
0.80-0.84 without). After the start the offsets are also split by the trip's pace
(``pace_group``): whether the trip's own speed so far says it will take longer than the
blend, shorter, or about as long. A trip that says longer is more often late than the
blend expects, and those were the arrivals a share bin's offsets missed at a checkpoint
(the bin is the *estimated* share, a checkpoint the *actual* one). The split is of the
records the offsets would come from (those made with a correction, once there are
``MIN_SCORES``); a group with fewer than ``MIN_GROUP`` of them uses them all (docs/ETA.md
"Thirteenth pass").
Candidates that disagree (one more than a factor of ``SPREAD`` from the candidates'
median: the trip's own speed after a long wait at its start, a rest that only the
physical model expects) are a story apart, where the bin's weights, earned mostly where
the candidates agreed, do not say who is right: such an estimate is weighed by the
records whose candidates disagreed alike (``disagreeing``: the same ones apart), once
there are ``MIN_RECORDS`` of them (on the simulator's trucks the trip's own speed after
an early rest, followed at full weight, had made 25 % of the trip 139 min off; 55 now).
The learned candidate gets weight only from records where a correction was fitted, and
only once there are enough of those, so a correction fitted a moment ago is not judged
by the physical model's record. Everything is learned from arrived trips only (the
replay feeds ``add`` after the arrival), so the evaluation stays prequential.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

CANDIDATES = ("physical", "learned", "fleet", "own", "length")
LEARNED = CANDIDATES.index("learned")
# a record's columns: the candidates, then the actual time left, then the band it output
# before the conformal step (blend, low, high; NaN when it had none)
ACTUAL = len(CANDIDATES)
LOW = ACTUAL + 2
WIDTH = ACTUAL + 4
LENGTH = CANDIDATES.index("length")
PRIOR = (0.5, 0.0, 0.0, 0.5, 0.0)  # before enough records: half physical, half the trip's own
PRIOR_START = (1.0, 0.0, 0.0, 0.0, 0.0)  # ... and at the start, where it has none: physical
# the fleet's statistics and the trip's own speed, weighed as a group against the models
# (with the length among the models the ships lost 0.06 min at 50 %, docs/ETA.md)
BASELINES = (CANDIDATES.index("fleet"), CANDIDATES.index("own"), CANDIDATES.index("length"))
MAX_RECORDS = 1_500  # per share bin
MIN_RECORDS = 60  # records of a bin and its neighbours for their own weights
Z = 0.0  # standard errors added to the best model's mean error against the baselines
# (off: on the measured sets it cost more than it saved, docs/ETA.md "Third pass")
TAIL = 0.1  # each end of the interval misses this share of past arrivals (80 % interval)
MIN_SCORES = 30  # records with an interval that a bin's conformal offsets need
FLOOR_S = 30.0  # times left are floored here before taking logs
NO_BAND = (math.nan, math.nan, math.nan)
EDGES = (1e-9, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # bins of the share done
BETA = 30.0  # how sharply a candidate's weight falls with its error relative to the best
PACE = math.log(1.05)  # the trip's own speed this far (in log) from the blend splits the
# conformal offsets (sooner, about the same, later: ``pace_group``)
PACE_EDGES = (-PACE, PACE)
MIN_GROUP = 40  # scores a pace group needs for its own offsets, else the whole pool's
OWN = CANDIDATES.index("own")
SPREAD = math.log(3.0)  # a candidate this far (a factor of 3) from the candidates' median
# disagrees with them (a rest that one expects and the others do not)


def candidates(predicted_s: float, learned_s: float | None, fleet_s: float,
               own_s: float | None, length_s: float | None = None
               ) -> tuple[float, float, float, float, float]:
    """The five predictions of the time left, seconds (``CANDIDATES``' order); NaN for a
    learned one that does not exist yet; the fleet's for a trip without its own speed and
    where the speed of trips of its length is not given."""
    return (predicted_s, math.nan if learned_s is None else learned_s, fleet_s,
            fleet_s if own_s is None else own_s, fleet_s if length_s is None else length_s)


def _exp_weights(mae: NDArray[np.float64]) -> NDArray[np.float64]:
    """``exp(-BETA * mae / best_mae)``, normalised (one 10 % worse than the best gets
    e^-3 of its weight)."""
    score = -BETA * mae / max(float(mae.min()), 1e-9)
    w = np.exp(score - score.max())
    return np.asarray(w / w.sum(), dtype=np.float64)


def _weights(x: NDArray[np.float64], y: NDArray[np.float64], cols: Sequence[int]
             ) -> NDArray[np.float64]:
    """Exponential weights by each candidate's mean absolute error relative to the best's
    (``_exp_weights``). ``cols``: which candidate each column of ``x`` is. The models
    (not baselines) are weighed among themselves by their mean errors; against the
    baselines, as a group, by the best model's error plus ``Z`` standard errors of its
    difference from the better baseline's (shrinkage towards that baseline while the
    records are few)."""
    err = np.abs(x - y[:, None])
    mae = err.mean(axis=0)
    base = [i for i, c in enumerate(cols) if c in BASELINES]
    models = [i for i, c in enumerate(cols) if c not in BASELINES]
    if not base or not models or len(y) < 2:
        return _exp_weights(mae)
    b = base[int(np.argmin(mae[base]))]
    m = models[int(np.argmin(mae[models]))]
    se = float(np.std(err[:, m] - err[:, b], ddof=1)) / math.sqrt(len(y))
    group = _exp_weights(np.asarray([mae[m] + Z * se, mae[b]]))
    w = np.zeros(len(cols))
    w[models] = group[0] * _exp_weights(mae[models])
    w[base] = group[1] * _exp_weights(mae[base])
    return w


def _fit_records(pool: NDArray[np.float64]) -> NDArray[np.float64]:
    """The candidates' weights from ``pool``'s records (rows, ``WIDTH`` columns): the
    learned candidate judged only on the records where it existed, once there are
    ``MIN_RECORDS`` of those; before that, without it (zero weight)."""
    n = len(CANDIDATES)
    x, y = pool[:, :n], pool[:, ACTUAL]
    learned = ~np.isnan(x[:, LEARNED])
    if learned.sum() >= MIN_RECORDS:
        return _weights(x[learned], y[learned], range(n))
    others = [i for i in range(n) if i != LEARNED]
    w = np.zeros(n)
    w[others] = _weights(x[:, others], y, others)
    return w


def conformal_level(n: int) -> float:
    """The quantile of ``n`` past scores that each end of the interval is moved by: split
    conformal's finite-sample level ``ceil((n + 1) * (1 - TAIL)) / n``, so that on a
    thin record (tens of trips) the interval still holds ``1 - TAIL`` of the next
    arrivals beyond each end instead of a little less (on thousands it is ``1 - TAIL``)."""
    return min(1.0, math.ceil((n + 1) * (1.0 - TAIL)) / n)


def pace_group(cands: Sequence[float], blended_s: float) -> int | None:
    """Which way the trip's own speed so far points against the blend: 0 sooner, 1 about
    the same (within ``PACE``), 2 later (None where either is not a number). The trip that
    says later is the one the blend most often takes for further along than it is."""
    d = math.log(max(cands[OWN], FLOOR_S) / max(blended_s, FLOOR_S))
    return bisect.bisect_right(PACE_EDGES, d) if math.isfinite(d) else None


def _pace_groups(rows: NDArray[np.float64]) -> NDArray[np.int64]:
    """``pace_group`` of each record (its own candidate against the blend it gave): the
    same edges, ``np.digitize`` being ``bisect_right`` over an array."""
    d = np.log(np.maximum(rows[:, OWN], FLOOR_S) / np.maximum(rows[:, ACTUAL + 1], FLOOR_S))
    groups: NDArray[np.int64] = np.where(np.isfinite(d), np.digitize(d, PACE_EDGES), -1)
    return groups


def disagreeing(cands: Sequence[float]) -> int:
    """Which candidates disagree with the rest, as bits (``1 << index``): those more than
    ``SPREAD`` (in log) from the median of the known candidates' logs; 0 when they agree.
    A trip's own speed after a long wait at its start, or a rest only the physical model
    expects, is such a story apart."""
    known = [(i, math.log(max(c, FLOOR_S))) for i, c in enumerate(cands) if not math.isnan(c)]
    mid = statistics.median(v for _, v in known)
    return sum(1 << i for i, v in known if abs(v - mid) > SPREAD)


def share_bin(elapsed_s: float, cands: Sequence[float]) -> int:
    """The bin of the share of the trip done, by the median of the candidates' time left
    (no single candidate's view of how far along the trip is), the length's apart: it
    says the same for every trip of a length, wherever along it (in the median it moved
    the records between bins and cost the ships 0.15 min at 75 %, docs/ETA.md)."""
    left = statistics.median(c for c in cands[:LENGTH] if not math.isnan(c))
    total = elapsed_s + max(left, 0.0)
    return bisect.bisect_left(EDGES, elapsed_s / total if total > 0 else 0.0)


class _Records:
    """One share bin's last ``MAX_RECORDS`` records, oldest first, as the rows of an
    array (``WIDTH`` columns; NaN where a record has no band), with each record's
    ``disagreeing`` mask: the weights and offsets read them as arrays, with no copy of a
    Python list per refit (which had made a replay of 9,544 bus trips five times slower
    than its estimates alone, docs/ETA.md "Eleventh pass")."""

    __slots__ = ("_masks", "_rows", "n")

    def __init__(self) -> None:
        self._rows = np.empty((MAX_RECORDS, WIDTH), dtype=np.float64)
        self._masks = np.empty(MAX_RECORDS, dtype=np.int64)
        self.n = 0

    def append(self, record: Sequence[float], mask: int) -> None:
        if self.n == MAX_RECORDS:  # the oldest goes
            self._rows[:-1] = self._rows[1:]
            self._masks[:-1] = self._masks[1:]
        else:
            self.n += 1
        self._rows[self.n - 1] = record
        self._masks[self.n - 1] = mask

    @property
    def rows(self) -> NDArray[np.float64]:
        return self._rows[:self.n]

    @property
    def masks(self) -> NDArray[np.int64]:
        return self._masks[:self.n]


class Stack:
    """The records per share bin and the weights and offsets they give (cached until a
    new record in the bin or its neighbours: stale weights cost much where the
    correction is young, measured in docs/ETA.md "Third pass")."""

    def __init__(self) -> None:
        bins = len(EDGES) + 1
        self._bins = [_Records() for _ in range(bins)]
        self._weights: list[dict[int, NDArray[np.float64]]] = [{} for _ in range(bins)]
        # per share bin, per pace group (None: the whole pool, at the start and where the
        # pace is not a number)
        self._offsets: list[dict[int | None, tuple[float, float]]] = [{} for _ in range(bins)]

    @property
    def records(self) -> list[NDArray[np.float64]]:
        """Each share bin's records, oldest first: one row each, ``WIDTH`` columns (the
        candidates, the actual time left, the band: NaN where there was none)."""
        return [b.rows for b in self._bins]

    def add(self, cands: Sequence[float], elapsed_s: float, actual_s: float,
            band: Sequence[float] = NO_BAND) -> None:
        """An estimate's candidates, once its trip has arrived after ``actual_s``; ``band``:
        the (blend, low, high) seconds it output before the conformal step."""
        self._append(share_bin(elapsed_s, cands), (*cands, actual_s, *band))

    def _append(self, b: int, record: Sequence[float]) -> None:
        self._bins[b].append(record, disagreeing(record[:len(CANDIDATES)]))
        for near in range(max(b - 1, 0), min(b + 2, len(self._bins))):
            self._weights[near] = {}
            self._offsets[near] = {}

    def weights(self, b: int, mask: int = 0) -> NDArray[np.float64]:
        """The candidates' weights in share bin ``b`` for an estimate whose candidates
        disagree as ``mask`` says (``disagreeing``)."""
        found = self._weights[b].get(mask)
        if found is None:
            found = self._fit(b) if not mask else self._fit_apart(b, mask)
            self._weights[b][mask] = found
        return found

    def blend(self, cands: Sequence[float], elapsed_s: float) -> float:
        """The blended time left, seconds: the weighted mean of the candidates' logs, so a
        candidate far off (the trip's own speed after an early rest: ten times too long)
        moves the blend by its weight's share of the ratio, not of the seconds."""
        w = self.weights(share_bin(elapsed_s, cands), disagreeing(cands))
        x = list(cands)
        if math.isnan(x[LEARNED]):
            x[LEARNED] = x[0]  # no correction: weight meant for it goes to the physical model
        return math.exp(sum(math.log(max(v, FLOOR_S)) * float(wi)
                            for v, wi in zip(x, w, strict=True)))

    def interval(self, cands: Sequence[float], elapsed_s: float, blended_s: float,
                 low_s: float, high_s: float) -> tuple[float, float] | None:
        """The interval conformalised around ``blended_s`` (``low_s``/``high_s``: before this
        step), or None while the bin's record is too thin."""
        b = share_bin(elapsed_s, cands)
        found = self.offsets(b, pace_group(cands, blended_s) if b else None)
        if found is None:
            return None
        d_lo, d_hi = found
        mid = math.log(max(blended_s, FLOOR_S))
        lo = math.log(max(low_s, FLOOR_S)) - mid - d_lo
        hi = math.log(max(high_s, FLOOR_S)) - mid + d_hi
        return min(blended_s * math.exp(lo), blended_s), max(blended_s * math.exp(hi),
                                                             blended_s)

    def offsets(self, b: int, group: int | None = None) -> tuple[float, float] | None:
        """How far to move the low and the high end (log), for share bin ``b`` and pace
        group ``group`` (``pace_group``; None: the bin's whole pool)."""
        found = self._offsets[b].get(group)
        if found is None:
            found = self._conformal(b, group) or (math.nan, math.nan)
            self._offsets[b][group] = found
        return None if math.isnan(found[0]) else found

    def _conformal(self, b: int, group: int | None) -> tuple[float, float] | None:
        for pool in self._pools(b):
            rows = pool[~np.isnan(pool[:, LOW])]
            learned = rows[~np.isnan(rows[:, LEARNED])]
            if len(learned) >= MIN_SCORES:
                rows = learned
            if group is not None:  # of the records the offsets would come from
                alike = rows[_pace_groups(rows) == group]
                if len(alike) >= MIN_GROUP:
                    rows = alike
            if len(rows) < MIN_SCORES:
                continue
            a = np.log(np.maximum(rows[:, ACTUAL:], FLOOR_S))
            y = a[:, 0] - a[:, 1]  # actual and the ends, relative to the blend
            lo, hi = a[:, 2] - a[:, 1], a[:, 3] - a[:, 1]
            q = conformal_level(len(rows))
            return float(np.quantile(lo - y, q)), float(np.quantile(y - hi, q))
        return None

    def _fit(self, b: int) -> NDArray[np.float64]:
        pool = self._pool(b)
        if len(pool) < MIN_RECORDS:
            return np.asarray(PRIOR_START if b == 0 else PRIOR, dtype=np.float64)
        return _fit_records(pool)

    def _fit_apart(self, b: int, mask: int) -> NDArray[np.float64]:
        """Weights for candidates that disagree as ``mask`` says: from the records that
        disagreed alike (the bin's and its neighbours', else every bin's), once there are
        ``MIN_RECORDS``; before that, the bin's weights. (Dropping the odd one out instead
        cost the simulator 7 min at the start: its physical model's lone rest is mostly
        right, the ships' mostly wrong; only the record tells, docs/ETA.md.)"""
        for bins in (self._near_bins(b), range(len(self._bins))):
            alike = self._rows(bins, mask)
            if len(alike) >= MIN_RECORDS:
                return _fit_records(alike)
        return self._fit(b)

    def _rows(self, bins: Iterable[int], mask: int | None = None) -> NDArray[np.float64]:
        """The records of ``bins``, in bin order, oldest first in each; only those whose
        candidates disagreed as ``mask`` says, when given."""
        if mask is None:
            parts = [self._bins[i].rows for i in bins]
        else:
            parts = [self._bins[i].rows[self._bins[i].masks == mask] for i in bins]
        return np.concatenate(parts) if parts else np.empty((0, WIDTH))

    def _near(self, b: int) -> NDArray[np.float64]:
        """The records of bin ``b`` and its neighbours after the start (the start, where the
        trip has no speed of its own yet: its own only)."""
        return self._rows(self._near_bins(b))

    def _near_bins(self, b: int) -> range:
        return range(0, 1) if b == 0 else range(max(b - 1, 1), min(b + 2, len(self._bins)))

    def _pool(self, b: int) -> NDArray[np.float64]:
        """The records that weigh for bin ``b``: ``_near``, else (after the start) those of
        every bin after the start."""
        pool = self._near(b)
        if b != 0 and len(pool) < MIN_RECORDS:
            pool = self._rows(range(1, len(self._bins)))
        return pool

    def _pools(self, b: int) -> Iterator[NDArray[np.float64]]:
        """The records for bin ``b``'s conformal offsets, nearest first: ``_near``, then
        every bin's (gathered only when the nearest are too few)."""
        yield self._near(b)
        yield self._rows(range(len(self._bins)))

    def to_json(self) -> list[list[list[float | None]]]:
        return [[[None if math.isnan(v) else round(v, 1) for v in r] for r in records.tolist()]
                for records in self.records]

    @classmethod
    def from_json(cls, obj: Any) -> Stack:
        stack = cls()
        for b, saved in enumerate((obj or [])[:len(stack._bins)]):
            for r in saved:
                if len(r) in (ACTUAL + 1, WIDTH):  # not another layout (without a band: older)
                    values = [math.nan if v is None else float(v) for v in r]
                    stack._append(b, values + [math.nan] * (WIDTH - len(values)))
        return stack
