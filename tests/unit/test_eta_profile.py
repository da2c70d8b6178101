"""The speed profile: by cell and hour of week, shrunk towards what is known around it."""

from __future__ import annotations

import pytest

from shiptrack.eta.profile import DEFAULT_KMH, SpeedProfile, cell_of, hour_of_week

MONDAY = 1_772_409_600  # 2026-03-02T00:00:00Z, a Monday
BERLIN = cell_of(52.52, 13.40)
NEAR = cell_of(52.60, 13.55)  # another cell, same resolution-3 parent
FAR = cell_of(40.42, -3.70)  # Madrid


def kmh(profile: SpeedProfile, cell: str, how: int) -> float:
    return 3.6 / profile.paces(cell, how)[0]


def test_hour_of_week_is_utc_from_monday_midnight() -> None:
    assert hour_of_week(MONDAY) == 0
    assert hour_of_week(MONDAY + 8 * 3600 + 59) == 8
    assert hour_of_week(MONDAY + 6 * 86400 + 23 * 3600) == 167
    assert hour_of_week(MONDAY + 7 * 86400) == 0


def test_nothing_known_is_the_default_speed() -> None:
    assert kmh(SpeedProfile(), BERLIN, 8) == pytest.approx(DEFAULT_KMH)
    assert SpeedProfile().mean_kmh == pytest.approx(DEFAULT_KMH)


def test_rush_hour_is_learned_apart_from_the_rest_of_the_week() -> None:
    profile = SpeedProfile()
    for _ in range(10):
        # Monday 08:00 through Berlin at 30 km/h; 14:00 at 80 km/h; 100 km each time
        profile.add_move(BERLIN, 8, 100_000.0, 100_000.0 / (30 / 3.6))
        profile.add_move(BERLIN, 14, 100_000.0, 100_000.0 / (80 / 3.6))
    assert kmh(profile, BERLIN, 8) == pytest.approx(30.0, rel=0.02)
    assert kmh(profile, BERLIN, 14) == pytest.approx(80.0, rel=0.02)
    # an hour never seen there: the cell's whole week (time-weighted: ~44 km/h)
    assert kmh(profile, BERLIN, 20) == pytest.approx(2 / (1 / 30 + 1 / 80), rel=0.05)


def test_new_cells_inherit_their_region_then_everything_known() -> None:
    profile = SpeedProfile()
    profile.add_move(BERLIN, 8, 500_000.0, 500_000.0 / (50 / 3.6))
    assert kmh(profile, NEAR, 8) == pytest.approx(50.0, rel=0.03)  # same parent cell
    assert kmh(profile, FAR, 8) == pytest.approx(50.0, rel=0.03)  # all that is known
    little = SpeedProfile()
    little.add_move(BERLIN, 8, 1_000.0, 1_000.0 / (20 / 3.6))  # 1 km of evidence
    assert DEFAULT_KMH * 0.8 < kmh(little, BERLIN, 8) < DEFAULT_KMH  # barely moved


def test_short_stops_are_time_per_metre_of_their_cell() -> None:
    profile = SpeedProfile()
    profile.add_move(BERLIN, 8, 200_000.0, 200_000.0 / (40 / 3.6))
    profile.add_stop(BERLIN, 1200.0)
    assert profile.paces(BERLIN, 8)[1] == pytest.approx(1200.0 / 200_000.0, rel=0.1)


def test_round_trip_through_json() -> None:
    profile = SpeedProfile()
    profile.add_move(BERLIN, 8, 50_000.0, 2_000.0)
    profile.add_stop(NEAR, 300.0)
    again = SpeedProfile.from_json(profile.to_json())
    for cell in (BERLIN, NEAR, FAR):
        assert again.paces(cell, 8) == pytest.approx(profile.paces(cell, 8))
