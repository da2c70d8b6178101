"""``trip_speeds``: the fleet's mean trip speed by trip length, and its candidate."""

from __future__ import annotations

import pytest

from shiptrack.eta.history import History
from shiptrack.eta.trip_speeds import PRIOR_M, TripSpeeds


def test_long_trips_take_the_fast_roads() -> None:
    """Fares of 3 km at 20 km/h and of 30 km at 70 km/h: one mean speed for both (the
    constant-speed baseline) is wrong for each; by length, each gets its own."""
    history = History()
    for _ in range(50):
        history.learn_trip(3_000.0, 2_500.0, 3_000.0 / (20.0 / 3.6))
        history.learn_trip(30_000.0, 25_000.0, 30_000.0 / (70.0 / 3.6))
    assert 40.0 < history.fleet_kmh < 60.0
    assert history.length_kmh(3_200.0) == pytest.approx(20.0, rel=0.1)
    assert history.length_kmh(29_000.0) == pytest.approx(70.0, rel=0.02)
    # a length never seen: the fleet's mean
    assert history.length_kmh(500_000.0) == pytest.approx(history.fleet_kmh, rel=1e-9)
    saved = History.from_json(history.to_json())
    assert saved.length_kmh(29_000.0) == pytest.approx(history.length_kmh(29_000.0))


def test_one_trip_leans_on_the_fleet() -> None:
    speeds = TripSpeeds()
    speeds.add(5_000.0, 5_000.0 / 5.0)  # one 5 km trip at 5 m/s
    fleet = 10.0
    expected = (5_000.0 + PRIOR_M) / (1_000.0 + PRIOR_M / fleet)
    assert speeds.speed_ms(6_000.0, fleet) == pytest.approx(expected)
    assert 5.0 < expected < fleet
