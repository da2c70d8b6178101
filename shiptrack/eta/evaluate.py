"""``shiptrack eta-eval``: replay recorded trips through the ETA and measure it.

Trips are replayed in order of departure, each through the same code ingest runs
(``EtaEstimator.observe`` on every fix, the route progress on every fix, an estimate at
the checkpoints). What the estimator knows is learned only from trips that *arrived
before this one departed* (prequential evaluation: no trip ever informs its own ETA, and
none informs one that was under way before it was over): its steps feed the speed
profile and the rest model, its length and duration the detour and fleet speed, and the
errors of the ETAs made during it the interval calibration. ``train_fraction`` keeps the
first share of trips (by departure) for learning only.

Checkpoint ``k`` is the first fix at or after k % of the trip's duration (the arrival
itself excluded). At each, three predictions of the arrival, from the same remaining
distance (along the route, else great circle times the learned detour factor):

- ``shiptrack``: the ETA (``model.EtaEstimator``), with its interval;
- ``constant_speed``: remaining distance / the fleet's mean trip speed over the trips
  learned so far (60 km/h before any);
- ``avg_speed_so_far``: remaining distance / the trip's own average speed so far
  (distance done / time elapsed; at checkpoint 0, or before 1 km is done, nothing is
  known yet and it falls back to ``constant_speed``).
"""

from __future__ import annotations

import heapq
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shiptrack.eta.geo import haversine_m
from shiptrack.eta.history import History
from shiptrack.eta.model import EtaConfig, EtaEstimator, EtaResult, Progress
from shiptrack.eta.speed import Motion, Step
from shiptrack.eta.trips import Trip

CHECKPOINTS = (0, 25, 50, 75)
CALIBRATION_EVERY = 5  # percent of the duration between two calibration points
MODELS = ("shiptrack", "constant_speed", "avg_speed_so_far")
MIN_DONE_M = 1_000.0
CONTEXT_GAP_M = 5_000.0  # a device that reappears farther away starts afresh


@dataclass
class Report:
    trips: int = 0
    learning_only: int = 0  # earliest trips kept for learning (train_fraction)
    errors: dict[str, dict[int, list[float]]] = field(default_factory=lambda: {
        m: {k: [] for k in CHECKPOINTS} for m in MODELS})  # signed, seconds (eta - actual)
    inside: dict[int, list[bool]] = field(default_factory=lambda: {k: [] for k in CHECKPOINTS})
    widths: dict[int, list[float]] = field(default_factory=lambda: {k: [] for k in CHECKPOINTS})

    def mae_min(self, model: str, k: int) -> float | None:
        errors = self.errors[model][k]
        return round(sum(abs(e) for e in errors) / len(errors) / 60.0, 2) if errors else None

    def coverage(self, k: int) -> float | None:
        inside = self.inside[k]
        return round(sum(inside) / len(inside), 3) if inside else None

    def median_width_h(self, k: int) -> float | None:
        widths = self.widths[k]
        return round(statistics.median(widths) / 3600.0, 2) if widths else None

    def to_json(self) -> dict[str, Any]:
        """Exactly the SPEC's ``--json`` object."""
        keys = [str(k) for k in CHECKPOINTS]

        def mae(model: str) -> dict[str, float | None]:
            return {s: self.mae_min(model, k) for s, k in zip(keys, CHECKPOINTS, strict=True)}

        return {
            "trips": self.trips,
            "checkpoints": list(CHECKPOINTS),
            "models": {
                "shiptrack": {"mae_min": mae("shiptrack"), "interval_coverage": {
                    s: self.coverage(k) for s, k in zip(keys, CHECKPOINTS, strict=True)}},
                "constant_speed": {"mae_min": mae("constant_speed")},
                "avg_speed_so_far": {"mae_min": mae("avg_speed_so_far")},
            },
        }


@dataclass(order=True)
class _Lesson:
    """What a replayed trip teaches, once it has arrived."""

    arrival: float
    seq: int
    trip_start: float = field(compare=False)
    steps: list[Step] = field(compare=False)
    road_m: float = field(compare=False)
    direct_m: float = field(compare=False)
    residuals: list[tuple[str, float, float]] = field(compare=False)
    estimates: list[tuple[EtaResult, float]] = field(compare=False)  # and the actual time left


def _first_at_or_after(ts: Sequence[float], share: float) -> int | None:
    """Index of the first fix at or after ``share`` of the duration (arrival excluded)."""
    target = ts[0] + share * (ts[-1] - ts[0])
    for i, t in enumerate(ts[:-1]):
        if t >= target:
            return i
    return None


class Replay:
    """The prequential replay; ``run`` returns the report."""

    def __init__(self, routes: bool = True, device_context: bool = True,
                 train_fraction: float = 0.0, config: EtaConfig | None = None) -> None:
        self.history = History()
        self.estimator = EtaEstimator(self.history, config)
        self.routes = routes
        self.device_context = device_context
        self.train_fraction = train_fraction
        self.motions: dict[str, Motion] = {}
        self.pending: list[_Lesson] = []
        self.report = Report()
        self.refit = True  # refit the learned correction as trips arrive (eta-learn: at the end)

    def run(self, trips: Sequence[Trip]) -> Report:
        order = sorted(trips, key=lambda trip: (trip.start, trip.trip_id))
        train = math.floor(len(order) * self.train_fraction)
        self.report.learning_only = train
        for seq, trip in enumerate(order):
            self._learn_until(trip.start)
            self._replay(seq, trip, evaluate=seq >= train)
        return self.report

    def learn_all(self) -> None:
        """Learn from every trip replayed (for a history to save after the run)."""
        self._learn_until(math.inf)

    def _learn_until(self, t: float) -> None:
        while self.pending and self.pending[0].arrival < t:
            lesson = heapq.heappop(self.pending)
            for step in lesson.steps:
                self.history.learn_step(step, lesson.trip_start)
            self.history.learn_trip(lesson.road_m, lesson.direct_m,
                                    lesson.arrival - lesson.trip_start)
            for kind, predicted, actual in lesson.residuals:
                self.history.calibration.add(kind, predicted, actual)
            for result, actual in lesson.estimates:
                self.history.learn_estimate(result.row, result.lanes, result.raw, result.share,
                                            result.predicted_s, actual, result.candidates,
                                            result.band)
            self.history.trip_learned(self.refit)

    def _motion(self, trip: Trip) -> Motion:
        if not self.device_context or trip.device_id is None:
            return Motion()
        motion = self.motions.get(trip.device_id)
        if motion is None or motion.ts is None or motion.ts > trip.start or haversine_m(
                motion.lat, motion.lon, trip.lats[0], trip.lons[0]) > CONTEXT_GAP_M:
            motion = Motion()
        self.motions[trip.device_id] = motion
        return motion

    def _replay(self, seq: int, trip: Trip, evaluate: bool) -> None:
        est, ts = self.estimator, trip.ts
        route = trip.route if self.routes else None
        plan = est.plan(trip.destination, route)
        motion, progress = self._motion(trip), Progress()
        checkpoints = {i: k for k in CHECKPOINTS
                       if (i := _first_at_or_after(ts, k / 100.0)) is not None}
        calibrate = {i for p in range(0, 100, CALIBRATION_EVERY)
                     if (i := _first_at_or_after(ts, p / 100.0)) is not None}
        steps: list[Step] = []
        residuals: list[tuple[str, float, float]] = []
        estimates: list[tuple[EtaResult, float]] = []
        travelled, start_along = 0.0, None
        for i, (t, lat, lon) in enumerate(zip(ts, trip.lats, trip.lons, strict=True)):
            step = est.observe_at(motion, t, lat, lon)
            if step is not None:
                steps.append(step)
                if i > 0 and step.moving:
                    travelled += step.metres
            if i == len(ts) - 1:
                break
            if i not in checkpoints and i not in calibrate:
                est.track_at(plan, progress, motion, t, lat, lon)
                continue
            result = est.estimate_at(plan, progress, motion, t, lat, lon)
            if start_along is None:
                start_along = progress.along_m
            actual = trip.end - t
            residuals.append((result.kind, result.predicted_s, actual))
            estimates.append((result, actual))
            k = checkpoints.get(i)
            if k is None or not evaluate:
                continue
            done = travelled if progress.along_m is None or start_along is None \
                else progress.along_m - start_along
            self._score(k, t - trip.start, actual, result.eta.timestamp() - t,
                        (result.eta_low.timestamp() - t, result.eta_high.timestamp() - t),
                        result.remaining_m, done)
        if evaluate:
            self.report.trips += 1
        road = route.length_m if route is not None else travelled
        direct = haversine_m(trip.lats[0], trip.lons[0], *trip.destination)
        heapq.heappush(self.pending, _Lesson(trip.end, seq, trip.start, steps, road, direct,
                                             residuals, estimates))

    def _score(self, k: int, elapsed: float, actual: float, predicted: float,
               band: tuple[float, float], remaining_m: float, done_m: float) -> None:
        """Errors at checkpoint ``k``; times in seconds from the checkpoint's fix."""
        fleet_ms = self.history.fleet_kmh / 3.6
        own_ms = done_m / elapsed if done_m >= MIN_DONE_M and elapsed > 0 else fleet_ms
        errors = self.report.errors
        errors["shiptrack"][k].append(predicted - actual)
        errors["constant_speed"][k].append(remaining_m / fleet_ms - actual)
        errors["avg_speed_so_far"][k].append(remaining_m / max(own_ms, 0.1) - actual)
        self.report.inside[k].append(band[0] <= actual <= band[1])
        self.report.widths[k].append(band[1] - band[0])


def evaluate(trips: Sequence[Trip], routes: bool = True, device_context: bool = True,
             train_fraction: float = 0.0, config: EtaConfig | None = None) -> Report:
    return Replay(routes, device_context, train_fraction, config).run(trips)
