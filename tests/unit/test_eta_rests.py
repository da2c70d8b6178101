"""Breaks and rests: the rules before history, hazards learned over driving clocks."""

from __future__ import annotations

import math

import pytest

from shiptrack.eta.rests import BREAK_S, REST_S, Hazard, RestModel, Rules

H = 3600.0


def test_before_history_the_rules_say_when_and_how_long() -> None:
    model = RestModel()
    assert model.to_break(0.0, True) / H == pytest.approx(4.5, abs=0.25)
    assert model.to_rest(0.0, True) / H == pytest.approx(9.0, abs=0.25)
    assert model.to_rest(6 * H, True) / H == pytest.approx(3.0, abs=0.25)
    assert model.breaks[True].chance(0.0, 3 * H) == 0.0  # a fresh driver: no break in 3 h
    assert model.typical(BREAK_S, REST_S) == pytest.approx(45 * 60 * 1.15)
    assert model.typical(REST_S) == pytest.approx(11 * H * 1.045)
    us = RestModel(Rules(break_after_s=8 * H, break_s=30 * 60, rest_after_s=11 * H,
                         rest_s=10 * H))
    assert us.to_break(0.0, True) / H == pytest.approx(8.0, abs=0.25)


def test_history_outweighs_the_rules() -> None:
    model = RestModel()
    for i in range(50):  # these drivers break after 2.5 to 3.5 hours, for an hour
        clock = (2.5 + i / 50) * H
        model.drove(clock, 0.0, 0.0, True, True)
        model.stopped(H, clock, clock, True, True)
    assert model.to_break(0.0, True) / H == pytest.approx(3.0, abs=0.2)
    assert model.typical(BREAK_S, REST_S) == pytest.approx(H)
    kind, other = model.doubt(3.0 * H, 0.0, 0.0, True, True)
    assert (kind, abs(other)) == ("break", H)  # a toss-up: an hour more, or less
    assert model.doubt(1.0 * H, 0.0, 0.0, True, True) == ("", 0.0)


def test_a_stop_in_progress_is_judged_by_its_clock() -> None:
    model = RestModel()
    # 30 minutes into a stop begun at 4.5 h of driving: a break, ~22 minutes to go
    assert model.remaining_stop(30 * 60, 4.5 * H, True) / 60 == pytest.approx(22, abs=2)
    # an hour into a stop begun at 9 h: the daily rest, ~10.5 hours to go
    assert model.remaining_stop(H, 9 * H, True) / H == pytest.approx(10.5, abs=0.1)
    assert model.remaining_stop(60.0, 9 * H, True) == 0.0  # a minute: no stop yet


def test_a_short_stop_far_from_the_rules_limits_is_not_taken_for_a_rest() -> None:
    model = RestModel()
    # five minutes standing an hour into the day, nothing seen yet: the rules' breaks and
    # rests (begun at 4.5 h and 9 h) do not say how long it lasts (it was hours before);
    # with no stop seen that got this far, as long again as it has lasted
    assert model.remaining_stop(300.0, 1.0 * H, False) == 300.0
    # stops seen at other clocks that got this far say it: their median, less the wait
    for seconds in (400.0, 600.0, 800.0):
        model.stopped(seconds, 6.0 * H, 6.0 * H, False, False)
    assert model.remaining_stop(300.0, 1.0 * H, False) == pytest.approx(300.0)
    # and near the rules' limit the rules still speak: a break
    assert model.remaining_stop(30 * 60, 4.5 * H, True) / 60 == pytest.approx(22, abs=2)
    # as does a stop already longer than any seen and ten minutes long, at any clock:
    # the rules' breaks and rests that got this far (a ship at anchor)
    assert model.remaining_stop(20 * 60, 1.0 * H, False) / H > 1.0


def test_hazard_waits_and_chances() -> None:
    hazard = Hazard()
    hazard.expose(0.0, 10 * H)
    hazard.event(2 * H)
    assert math.isfinite(hazard.median_wait(0.0))
    assert 0.0 < hazard.chance(0.0, 5 * H) < 1.0
    assert hazard.at(30 * H) > hazard.at(10 * H)  # beyond the bins the last rate holds


def test_round_trip_through_json() -> None:
    model = RestModel(Rules(break_after_s=8 * H))
    model.drove(2 * H, 0.0, 0.0, False, True)
    model.stopped(50 * 60, 2 * H, 2 * H, False, True)
    again = RestModel.from_json(model.to_json())
    assert again.to_break(H, False) == pytest.approx(model.to_break(H, False), rel=1e-6)
    assert again.stops == model.stops
    assert again.rules == model.rules
