"""What the learned correction sees of one estimate: numbers known at that moment only.

Everything here is known when the estimate is made: the physical model's prediction
and the distance left, the great circle to the destination, time and distance since the
shipment's first fix, the trip's and the device's recent speed, how long it has been
standing, the local hour and weekday (solar time from the longitude: the same code
serves every time zone), what the two naive baselines would say (as ratios to the
physical prediction, so the model can lean on whichever does better where), the kind of
prediction, and the history of similar trips (``lanes``). Never the arrival: a trip's own
end is only known to the learning side, once it has arrived.
"""

from __future__ import annotations

import math

FEATURES = (
    "log_predicted_s", "log_remaining_m", "log_direct_m", "log_elapsed_s", "log_travelled_m",
    "share_done", "log_trip_kmh", "log_recent_kmh", "log_still_s", "local_hour",
    "local_weekday", "log_fleet_ratio", "log_own_ratio", "kind", "log_step_kmh",
    "log_closing_kmh", "log_closing_ratio", "log_trip_closing_ratio", "directness",
    "log_elapsed_ratio",
    "lane_fine_n", "lane_fine_ratio", "lane_coarse_n", "lane_coarse_ratio",
    "approach_n", "approach_ratio", "log_here_kmh", "log_destination_kmh",
)
KINDS = {"moving": 0.0, "moving-break": 1.0, "moving-rest": 2.0, "stopped": 3.0,
         "stopped-break": 4.0, "stopped-rest": 5.0}
MIN_TRIP_S = 60.0  # before this, the trip has no average speed of its own
MIN_TRIP_M = 200.0
DAY_S = 86_400.0
MIN_CLOSING_MS = 0.3  # slower than this towards the destination: no closing-speed ETA


def _log(value: float, floor: float) -> float:
    return math.log(max(value, floor))


def own_speed_ms(elapsed_s: float, travelled_m: float) -> float | None:
    """The trip's own average speed so far (None before it has one)."""
    return travelled_m / elapsed_s if elapsed_s >= MIN_TRIP_S \
        and travelled_m >= MIN_TRIP_M else None


def share_of(elapsed_s: float, predicted_s: float) -> float:
    """How much of the trip is done, by time, as the physical model sees it."""
    total = elapsed_s + max(predicted_s, 0.0)
    return elapsed_s / total if total > 0 else 0.0


def features(*, t: float, lon: float, predicted_s: float, remaining_m: float,
             direct_m: float, elapsed_s: float, travelled_m: float, recent_kmh: float | None,
             still_s: float, fleet_kmh: float, kind: str, step_ms: float | None,
             closing_ms: float | None, closed_m: float, lanes: list[float]) -> list[float]:
    """One row of ``FEATURES`` (NaN where a value is unknown)."""
    pred = max(predicted_s, 1.0)
    own_ms = own_speed_ms(elapsed_s, travelled_m)
    trip_ms = math.nan if own_ms is None else own_ms
    own_ratio = math.log(max(remaining_m / trip_ms, 1.0) / pred) \
        if trip_ms == trip_ms else math.nan
    fleet_s = remaining_m / max(fleet_kmh / 3.6, 0.1)
    solar = t + lon / 15.0 * 3600.0
    days = solar / DAY_S
    return [
        _log(pred, 1.0), _log(remaining_m, 1.0), _log(direct_m, 1.0), math.log1p(elapsed_s),
        math.log1p(travelled_m), travelled_m / max(travelled_m + remaining_m, 1.0),
        _log(trip_ms * 3.6, 0.01) if trip_ms == trip_ms else math.nan,
        _log(recent_kmh, 0.01) if recent_kmh is not None else math.nan,
        math.log1p(still_s), (days % 1.0) * 24.0, float(int(days + 3.0) % 7),
        math.log(max(fleet_s, 1.0) / pred), own_ratio, KINDS.get(kind, 0.0),
        _log(step_ms * 3.6, 0.01) if step_ms is not None else math.nan,
        math.copysign(math.log1p(abs(closing_ms) * 3.6), closing_ms)
        if closing_ms is not None else math.nan,
        math.log(max(direct_m / closing_ms, 1.0) / pred)
        if closing_ms is not None and closing_ms > MIN_CLOSING_MS else math.nan,
        math.log(max(direct_m * elapsed_s / closed_m, 1.0) / pred)
        if elapsed_s >= MIN_TRIP_S and closed_m > MIN_TRIP_M else math.nan,
        closed_m / travelled_m if travelled_m >= MIN_TRIP_M else math.nan,
        math.log1p(elapsed_s) - math.log(pred),
        *_ratios(lanes, math.log(pred)),
    ]


def _ratios(lanes: list[float], log_pred: float) -> list[float]:
    """Lane features (pairs of log visits and log median seconds) with the seconds as log
    ratios to the physical prediction, like the target; the rest as they are."""
    out = list(lanes)
    for i in range(1, 6, 2):
        out[i] = lanes[i] - log_pred
    return out
