"""The ETA estimator: arrival time, an 80 % interval and the distance left, per fix.

Pure and cheap (no I/O; a route projection, a walk over at most a few hundred pieces of
the road ahead, a few dictionary lookups). Per-device and per-shipment state are small
``msgspec.Struct``s the caller keeps (in memory, or in its persisted tracking state)::

    estimator = EtaEstimator(history)            # History.load(path), or History()
    plan = estimator.plan((lat, lon), Route.from_geojson(route) if route else None)
    motion = Motion()                            # per device
    progress = Progress()                        # per shipment
    estimator.observe(motion, fix)               # once per new fix of the device
    result = estimator.estimate(plan, progress, motion, fix)  # per shipment it carries

``EtaState`` + ``update(state, plan, fix)`` does both for a device with one shipment.
Feed fixes in time order (those that advanced the device's live position); older ones
are ignored by ``observe``. A plan is immutable and may be shared; ``Motion`` and
``Progress`` are mutated in place.

How the time is made (docs/DESIGN.md "ETA"):

1. Distance left: along the route from the fix's projection (``route.Route.project``),
   else the great circle times the road-detour factor learned from history.
2. The road ahead is cut into pieces of about ``piece_m``; each takes its length times
   the profile's moving pace for its cell at the hour of week the device will get there,
   divided by the device's recent speed factor (how much faster than the profile it has
   been lately), which fades over ``recent_fade_m`` ahead; plus the cell's usual short
   stops.
3. Stops: what is left of a stop in progress (``rests.remaining_stop``), then breaks and
   rests inserted where the driving clocks say the next one becomes more likely than not.
4. The interval comes from the calibration's residual quantiles for predictions of the
   same kind and length (``calibration``); optionally (``bias_correction``) the point
   ETA is moved by their median too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

import msgspec
import numpy as np
from numpy.typing import NDArray

from shiptrack.eta.calibration import kind_of
from shiptrack.eta.correction import FLOOR_S as LEARNED_FLOOR_S
from shiptrack.eta.features import features, own_speed_ms, share_of
from shiptrack.eta.geo import between, haversine_m
from shiptrack.eta.history import History
from shiptrack.eta.lanes import lane_keys
from shiptrack.eta.outlook import Outlook
from shiptrack.eta.profile import cell_of, hour_of_week
from shiptrack.eta.rests import BREAK_S, MIN_STOP_S, REST_S
from shiptrack.eta.route import ON_ROUTE_M, Projection, Route
from shiptrack.eta.speed import Motion, Step, observe
from shiptrack.eta.stacking import candidates

MAX_SPEED_MS = 50.0  # no truck covers more than this between two fixes (projection reach)
MIN_REACH_M = 2_000.0
MAX_STOPS = 8  # breaks and rests inserted into one estimate at most
CLOSING_TAU_S = 600.0
DOUBT = 0.2  # a break or rest ahead this unsure either way makes a "doubt" prediction


class FixLike(Protocol):
    """What the estimator reads of a fix (``shiptrack.fix.Fix`` has it)."""

    @property
    def ts(self) -> datetime: ...
    @property
    def lat(self) -> float: ...
    @property
    def lon(self) -> float: ...
    @property
    def accuracy(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class EtaConfig:
    piece_m: float = 5_000.0
    recent_fade_m: float = 10_000.0
    own_pace_m: float = 50_000.0  # profile metres in a region worth hours of the device's pace
    bias_correction: bool = False


class EtaResult(NamedTuple):
    eta: datetime
    eta_low: datetime
    eta_high: datetime
    remaining_m: float
    predicted_s: float  # the model's remaining time before calibration (for calibrating)
    kind: str  # its kind, for the calibration (``calibration.KINDS``)
    outlook: Outlook | None = None  # the distribution of the time left (late_probability)
    row: tuple[float, ...] = ()  # what the learned correction saw (``features.FEATURES``)
    lanes: tuple[str, ...] = ()  # the lanes from here to the destination (``lanes``)
    raw: tuple[float, float, float] | None = None  # the correction's quantiles, unconformalised
    share: float = 0.0  # share of the trip done, by the physical prediction
    candidates: tuple[float, ...] = ()  # what the blend weighed (``stacking.CANDIDATES``),
    # then the seconds since the shipment's first fix
    band: tuple[float, ...] = ()  # (blend, low, high) seconds left before the conformal step


class Progress(msgspec.Struct, kw_only=True):
    """Per shipment: how far along its route the device was last seen."""

    along_m: float | None = None
    ts: float | None = None
    started: float | None = None  # the first fix seen for the shipment
    last_lat: float | None = None  # the last fix seen for it, and the metres between fixes
    last_lon: float | None = None
    travelled_m: float = 0.0
    last_ts: float | None = None
    step_ms: float | None = None  # speed over the last step between fixes
    closing_ms: float | None = None  # how fast the great circle to the destination shrinks
    start_direct_m: float | None = None  # the great circle to the destination at the start


@dataclass(frozen=True, slots=True)
class Plan:
    """Per shipment, made once (``EtaEstimator.plan``): destination and route pieces."""

    destination: tuple[float, float]
    route: Route | None = None
    starts: NDArray[np.float64] | None = None  # piece start distances (+ route length)
    cells: tuple[str, ...] = ()


class EtaState(msgspec.Struct, kw_only=True):
    """A device with one shipment: its ``Motion`` and the shipment's ``Progress``."""

    motion: Motion = msgspec.field(default_factory=Motion)
    progress: Progress = msgspec.field(default_factory=Progress)


def _epoch(ts: datetime) -> float:
    return ts.timestamp()


def _moment(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


class EtaEstimator:
    def __init__(self, history: History | None = None, config: EtaConfig | None = None) -> None:
        self.history = history or History()
        self.config = config or EtaConfig()

    # -- per shipment, once --------------------------------------------------------------

    def plan(self, destination: tuple[float, float], route: Route | None = None) -> Plan:
        """A shipment's plan; ``route`` as ``Route.from_geojson(...)`` when it has one."""
        if route is None:
            return Plan(destination)
        starts, mids = route.pieces(self.config.piece_m)
        return Plan(destination, route, starts, tuple(cell_of(lat, lon) for lat, lon in mids))

    # -- per fix -------------------------------------------------------------------------

    def observe(self, motion: Motion, fix: FixLike) -> Step | None:
        """Advance the device's motion with a new fix (older fixes are ignored)."""
        return self.observe_at(motion, _epoch(fix.ts), fix.lat, fix.lon)

    def observe_at(self, motion: Motion, t: float, lat: float, lon: float) -> Step | None:
        return observe(motion, t, lat, lon, self.history.profile.pace_at)

    def estimate(self, plan: Plan, progress: Progress, motion: Motion, fix: FixLike
                 ) -> EtaResult:
        """The shipment's ETA at ``fix`` (after ``observe`` has seen it)."""
        return self.estimate_at(plan, progress, motion, _epoch(fix.ts), fix.lat, fix.lon,
                                fix.accuracy or 0.0)

    def update(self, state: EtaState, plan: Plan, fix: FixLike) -> EtaResult:
        """``observe`` then ``estimate``, for a device with one shipment."""
        self.observe(state.motion, fix)
        return self.estimate(plan, state.progress, state.motion, fix)

    def estimate_at(self, plan: Plan, progress: Progress, motion: Motion, t: float,
                    lat: float, lon: float, accuracy: float = 0.0) -> EtaResult:
        _advance(progress, t, lat, lon, plan.destination)
        pieces, remaining_m = self._pieces(plan, progress, motion, t, lat, lon, accuracy)
        predicted, kind, other, chance = self._walk(pieces, motion, t, progress.started or t)
        history = self.history
        elapsed = t - (progress.started or t)
        direct = haversine_m(lat, lon, *plan.destination)
        keys = lane_keys(lat, lon, *plan.destination, direct)
        row = features(t=t, lon=lon, predicted_s=predicted, remaining_m=remaining_m,
                       direct_m=direct, elapsed_s=elapsed,
                       closed_m=(progress.start_direct_m or direct) - direct,
                       travelled_m=progress.travelled_m, recent_kmh=motion.recent_kmh,
                       still_s=motion.still_for(t), fleet_kmh=history.fleet_kmh, kind=kind,
                       step_ms=progress.step_ms, closing_ms=progress.closing_ms,
                       lanes=[*history.lanes.features(keys), history.fine.log_kmh(lat, lon),
                              history.fine.log_kmh(*plan.destination)])
        share = share_of(elapsed, predicted)
        correction = history.correction
        raw = None
        if correction is not None:
            raw = correction.raw(row)
            low, mid, high = correction.band(raw, share)
            base = max(predicted, LEARNED_FLOOR_S)
            low_s, point, high_s = (base * math.exp(v) for v in (low, mid, high))
            outlook = Outlook.from_quantiles(low_s, point, high_s)
        else:
            outlook = self._physical_outlook(kind, predicted, other, chance)
            point = predicted * math.exp(history.calibration.band(kind, predicted)[1]) \
                if self.config.bias_correction else predicted
            low_s, high_s = outlook.quantile(0.1), outlook.quantile(0.9)
        own_ms = own_speed_ms(elapsed, progress.travelled_m)
        length_kmh = history.length_kmh(progress.travelled_m + remaining_m)
        cands = candidates(predicted, point if raw is not None else None,
                           remaining_m / max(history.fleet_kmh / 3.6, 0.1),
                           None if own_ms is None else remaining_m / max(own_ms, 0.1),
                           remaining_m / max(length_kmh / 3.6, 0.1))
        stack = history.stack
        blended = stack.blend(cands, elapsed)
        ratio = max(blended, 1.0) / max(point, 1.0)  # the interval moves with the blend
        low_s, high_s = min(low_s * ratio, blended), max(high_s * ratio, blended)
        band = (blended, low_s, high_s)
        conformal = stack.interval(cands, elapsed, blended, low_s, high_s)
        if conformal is None:
            outlook = outlook.scaled(ratio)
        else:
            low_s, high_s = conformal
            outlook = Outlook.from_quantiles(low_s, blended, high_s)
        return EtaResult(_moment(t + blended), _moment(t + low_s), _moment(t + high_s),
                         remaining_m, predicted, kind, outlook, tuple(row), keys, raw, share,
                         (*cands, elapsed), band)

    def _physical_outlook(self, kind: str, predicted: float, other: float, chance: float
                          ) -> Outlook:
        """Without a learned correction: the calibration's band for the prediction's kind;
        a toss-up stop too new to have a record of its own is two outcomes, each with the
        spread of the plain kind, weighted by the stop's chance (not a window over both)."""
        calibration = self.history.calibration
        if not other or calibration.knows(kind, predicted):
            low, _, high = calibration.band(kind, predicted)
            return Outlook.from_quantiles(predicted * math.exp(low), predicted,
                                          predicted * math.exp(high))
        plain = kind.split("-")[0]
        with_stop, without = (predicted, predicted + other) if other < 0 \
            else (predicted + other, predicted)
        parts = []
        for weight, seconds in ((chance, with_stop), (1.0 - chance, max(without, 0.0))):
            low, _, high = calibration.band(plain, seconds)
            parts.append(Outlook.part(weight, seconds * math.exp(low), seconds,
                                      seconds * math.exp(high)))
        return Outlook(tuple(parts))

    def track_at(self, plan: Plan, progress: Progress, motion: Motion, t: float, lat: float,
                 lon: float, accuracy: float = 0.0) -> None:
        """Follow the shipment's progress along its route without estimating (a caller
        that estimates only now and then should still track every fix: loops)."""
        if plan.route is not None:
            self._project(plan.route, progress, motion, t, lat, lon, accuracy)
        _advance(progress, t, lat, lon, plan.destination)

    # -- distance left -------------------------------------------------------------------

    def _pieces(self, plan: Plan, progress: Progress, motion: Motion, t: float, lat: float,
                lon: float, accuracy: float) -> tuple[list[tuple[float, str]], float]:
        """The road ahead as (metres, cell) pieces, and its length."""
        detour = self.history.detour
        dest_lat, dest_lon = plan.destination
        direct_m = haversine_m(lat, lon, dest_lat, dest_lon) * detour
        route = plan.route
        if route is None or plan.starts is None:
            return self._straight(lat, lon, dest_lat, dest_lon, direct_m), direct_m
        along = self._project(route, progress, motion, t, lat, lon, accuracy)
        offset = along.offset_m
        rejoin = offset * detour if offset > ON_ROUTE_M + accuracy else 0.0
        ahead = route.length_m - along.along_m
        if rejoin and direct_m < ahead + rejoin:
            return self._straight(lat, lon, dest_lat, dest_lon, direct_m), direct_m
        starts = plan.starts
        k = max(0, int(np.searchsorted(starts, along.along_m, side="right")) - 1)
        pieces = [(rejoin, plan.cells[min(k, len(plan.cells) - 1)])] if rejoin else []
        if k < len(plan.cells):
            pieces.append((float(starts[k + 1]) - along.along_m, plan.cells[k]))
            pieces.extend((float(starts[i + 1] - starts[i]), plan.cells[i])
                          for i in range(k + 1, len(plan.cells)))
        return pieces, ahead + rejoin

    def _project(self, route: Route, progress: Progress, motion: Motion, t: float,
                 lat: float, lon: float, accuracy: float) -> Projection:
        previous, expected, reach = progress.along_m, None, math.inf
        if previous is not None and progress.ts is not None:
            dt = max(0.0, t - progress.ts)
            reach = max(MIN_REACH_M, MAX_SPEED_MS * dt + accuracy)
            kmh = motion.recent_kmh if motion.still_since is None else 0.0
            expected = previous + (kmh or 0.0) / 3.6 * dt
        found = route.project(lat, lon, previous, expected, reach, 30.0 + accuracy)
        progress.along_m, progress.ts = found.along_m, t
        return found

    def _straight(self, lat: float, lon: float, dest_lat: float, dest_lon: float,
                  road_m: float) -> list[tuple[float, str]]:
        n = max(1, min(60, math.ceil(road_m / self.config.piece_m)))
        return [(road_m / n, cell_of(*between(lat, lon, dest_lat, dest_lon, (i + 0.5) / n)))
                for i in range(n)]

    # -- time ----------------------------------------------------------------------------

    def _walk(self, pieces: list[tuple[float, str]], motion: Motion, t0: float,
              started: float) -> tuple[float, str, float, float]:
        """Seconds to drive ``pieces`` from ``t0``, stops included; the kind of the
        prediction (``calibration.kind_of``); and what a toss-up stop's other outcome
        would add (or take away). A stop that began before the shipment's
        first fix (``started``) is the wait at its origin: over now, not a rest in
        progress (but long enough, it still counts as the driver's break or rest)."""
        profile, rests = self.history.profile, self.history.rests
        t = t0
        since_break, since_rest = motion.since_break_s, motion.since_rest_s
        break_seen, rest_seen = motion.break_seen, motion.rest_seen
        still = motion.still_for(t0)
        left = 0.0
        if motion.still_since is not None and motion.still_since >= started \
                and still >= MIN_STOP_S:
            left = rests.remaining_stop(still, since_rest, rest_seen)
        t += left
        if still + left >= BREAK_S:
            since_break, break_seen = 0.0, True
            if still + left >= REST_S:
                since_rest, rest_seen = 0.0, True
        clocks = (since_break, since_rest, break_seen, rest_seen)
        to_break = rests.to_break(since_break, break_seen)
        to_rest = rests.to_rest(since_rest, rest_seen)
        break_s = rest_s = 0.0
        if math.isfinite(to_break) or math.isfinite(to_rest):
            break_s, rest_s = rests.typical(BREAK_S, REST_S), rests.typical(REST_S)
        factor, own = motion.speed_factor, motion.long_pace
        fade, own_m = self.config.recent_fade_m, self.config.own_pace_m * motion.long_weight
        driven, ahead, stops = 0.0, 0.0, 0
        for metres, cell in pieces:
            move, stop = profile.paces(cell, hour_of_week(t))
            if own is not None:  # where the profile knows little, the device's own pace
                known = profile.evidence_m(cell)
                move = (move * known + own * own_m) / (known + own_m)
            f = 1.0 + (factor - 1.0) * math.exp(-(ahead + metres / 2) / fade)
            moving_s = metres * move / max(f, 0.05)
            t += moving_s + metres * stop
            driven += moving_s
            ahead += metres
            while driven >= min(to_break, to_rest) and stops < MAX_STOPS:
                stops += 1
                if to_rest <= to_break:
                    t += rest_s
                    to_rest = driven + rests.to_rest(0.0, True)
                else:
                    t += break_s
                to_break = driven + rests.to_break(0.0, True)
        doubt, other, chance = rests.doubt_chance(driven, *clocks, least=DOUBT)
        return t - t0, kind_of(left > 0.0, doubt), other, chance


def _advance(progress: Progress, t: float, lat: float, lon: float,
             destination: tuple[float, float]) -> None:
    """The shipment's first fix, the metres between its fixes, the speed of the last step
    and (smoothed over ``CLOSING_TAU_S``) how fast the destination comes nearer."""
    if progress.started is None:
        progress.started = t
    if progress.start_direct_m is None:
        progress.start_direct_m = haversine_m(lat, lon, *destination)
    last_lat, last_lon, last_ts = progress.last_lat, progress.last_lon, progress.last_ts
    if last_lat is not None and last_lon is not None and last_ts is not None:
        dt = t - last_ts
        if dt <= 0.0:
            return
        step = haversine_m(last_lat, last_lon, lat, lon)
        progress.travelled_m += step
        progress.step_ms = step / dt
        closing = (haversine_m(last_lat, last_lon, *destination)
                   - haversine_m(lat, lon, *destination)) / dt
        w = math.exp(-dt / CLOSING_TAU_S)
        progress.closing_ms = closing if progress.closing_ms is None \
            else w * progress.closing_ms + (1.0 - w) * closing
    progress.last_lat, progress.last_lon, progress.last_ts = lat, lon, t

