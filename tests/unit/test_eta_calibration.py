"""The ETA interval: empirical quantiles of past errors, by kind and length."""

from __future__ import annotations

import math
import random

import pytest

from shiptrack.eta.calibration import (
    DEFAULT_BAND,
    KINDS,
    MIN_SAMPLES,
    Calibration,
    fallbacks,
    kind_of,
)


def test_an_empty_calibration_uses_the_default_band() -> None:
    assert Calibration().band("moving", 3600.0) == DEFAULT_BAND


def test_coverage_is_near_80_percent_on_synthetic_errors() -> None:
    rng = random.Random(7)
    calibration = Calibration()

    def actual(predicted: float) -> float:
        # a model 5 % optimistic, with log-normal errors that are wider for short remainders
        sigma = 0.08 if predicted > 4 * 3600 else 0.2
        return predicted * math.exp(rng.gauss(0.05, sigma))

    for _ in range(4000):
        predicted = rng.uniform(600.0, 10 * 3600.0)
        calibration.add("moving", predicted, actual(predicted))
    inside = 0
    trials = 4000
    for _ in range(trials):
        predicted = rng.uniform(600.0, 10 * 3600.0)
        low, _, high = calibration.band("moving", predicted)
        inside += predicted * math.exp(low) <= actual(predicted) <= predicted * math.exp(high)
    assert inside / trials == pytest.approx(0.8, abs=0.03)
    low, mid, high = calibration.band("moving", 6 * 3600.0)
    assert mid == pytest.approx(0.05, abs=0.02)  # the median tells the bias
    assert high - low == pytest.approx(2 * 1.2816 * 0.08, rel=0.15)  # narrow where errors are


def test_a_sparse_kind_borrows_from_its_neighbours_then_from_other_kinds() -> None:
    calibration = Calibration()
    for _ in range(MIN_SAMPLES):
        calibration.add("stopped", 2.5 * 3600.0, 2.5 * 3600.0 * 1.5)
    # the 1-2 h bin of "stopped" is empty: it borrows from the 2-4 h bin next to it
    assert calibration.band("stopped", 1.5 * 3600.0)[1] == pytest.approx(math.log(1.5))
    # "moving" has nothing at all: it borrows from every kind
    assert calibration.band("moving", 2.5 * 3600.0)[1] == pytest.approx(math.log(1.5))


def test_a_clear_case_never_borrows_the_toss_ups_while_a_plainer_kind_has_enough() -> None:
    calibration = Calibration()
    for _ in range(MIN_SAMPLES):
        calibration.add("moving", 3600.0, 3600.0 * 1.1)
        calibration.add("moving-rest", 3600.0, 3600.0 * 12.0)
    assert fallbacks("stopped-rest") == [("stopped-rest",), ("stopped",), ("moving",), KINDS]
    assert calibration.band("stopped", 3600.0)[2] == pytest.approx(math.log(1.1))
    assert calibration.band("stopped-rest", 3600.0)[2] == pytest.approx(math.log(1.1))
    assert calibration.band("moving-rest", 3600.0)[2] == pytest.approx(math.log(12.0))


def test_kinds_and_coverage_setting() -> None:
    assert kind_of(False, "") == "moving"
    assert kind_of(True, "rest") == "stopped-rest"
    with pytest.raises(ValueError):
        Calibration(coverage=1.0)
    wide = Calibration(coverage=0.95)
    for r in range(100):
        wide.add("moving", 3600.0, 3600.0 * math.exp((r - 49.5) / 100))
    low, _, high = wide.band("moving", 3600.0)
    assert (low, high) == pytest.approx((-0.475, 0.475), abs=0.01)


def test_round_trip_through_json() -> None:
    calibration = Calibration()
    for r in range(60):
        calibration.add("moving-break", 7200.0, 7200.0 + 60.0 * r)
    again = Calibration.from_json(calibration.to_json())
    assert again.band("moving-break", 7200.0) == pytest.approx(
        calibration.band("moving-break", 7200.0), abs=1e-4)
    assert len(again) == 60
