"""The simulator's pure parts: geometry, the fleet model, the payload, the CLI's checks."""

from __future__ import annotations

import math
import os
import signal
import threading
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from typer.testing import CliRunner

from simulator.cli import app, stop_on_signals
from simulator.fleet import Fleet, Phase
from simulator.geo import (
    Polyline,
    destination_point,
    haversine_m,
    initial_bearing_deg,
    interpolate_along,
)
from simulator.payload import PositionPayload, format_ts
from simulator.roads import SPEED_BANDS_KMH

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
BERLIN = (52.5200, 13.4050)
HAMBURG = (53.5511, 9.9937)


def run_fleet(fleet: Fleet, interval_s: float, ticks: int) -> list[list[PositionPayload]]:
    return [fleet.step(T0 + timedelta(seconds=k * interval_s)) for k in range(ticks)]


def point(p: PositionPayload) -> tuple[float, float]:
    return (p["lat"], p["lon"])


def by_device(history: list[list[PositionPayload]], i: int) -> list[PositionPayload]:
    return [tick[i] for tick in history]


# --- geometry ---------------------------------------------------------------------------


def test_haversine_and_bearing_match_known_values() -> None:
    assert haversine_m(BERLIN, HAMBURG) == pytest.approx(255_300, rel=0.01)
    assert initial_bearing_deg(BERLIN, HAMBURG) == pytest.approx(298.6, abs=1.0)
    assert initial_bearing_deg((0.0, 0.0), (1.0, 0.0)) == pytest.approx(0.0)
    assert initial_bearing_deg((0.0, 0.0), (0.0, -1.0)) == pytest.approx(270.0)


def test_destination_point_inverts_distance_and_bearing() -> None:
    bearing = initial_bearing_deg(BERLIN, HAMBURG)
    there = destination_point(BERLIN, bearing, haversine_m(BERLIN, HAMBURG))
    assert haversine_m(there, HAMBURG) < 1.0


def test_polyline_locates_points_by_distance() -> None:
    corner = (52.5200, 14.0)
    line = Polyline.of([BERLIN, corner, (53.0, 14.0)])
    first = haversine_m(BERLIN, corner)
    assert line.length_m == pytest.approx(first + haversine_m(corner, (53.0, 14.0)))
    middle, bearing = line.locate(first / 2)
    assert haversine_m(middle, BERLIN) == pytest.approx(first / 2, rel=1e-6)
    assert bearing == pytest.approx(90.0, abs=0.5)
    assert line.locate(first + 1000)[1] == pytest.approx(0.0, abs=0.01)
    assert line.locate(-5.0)[0] == BERLIN
    assert interpolate_along([BERLIN, corner], 1e9) == corner
    assert line.distance_to_m(middle) < 1.0


# --- the fleet model --------------------------------------------------------------------


def test_same_seed_gives_same_fixes_and_another_seed_does_not() -> None:
    a = run_fleet(Fleet(5, seed=42), 5.0, 50)
    b = run_fleet(Fleet(5, seed=42), 5.0, 50)
    c = run_fleet(Fleet(5, seed=43), 5.0, 50)
    assert a == b
    assert a != c
    assert Fleet(3, seed=1).device_ids == ["sim-0001", "sim-0002", "sim-0003"]


def test_speeds_are_plausible_and_match_movement() -> None:
    interval = 5.0
    history = run_fleet(Fleet(20, seed=3), interval, 2 * 3600 // 5)
    for i in range(20):
        fixes = by_device(history, i)
        for a, b in pairwise(fixes):
            implied = haversine_m(point(a), point(b)) / interval
            assert 0 <= implied * 3.6 <= 150
            assert 0 <= b["speed"] * 3.6 <= 110
            assert implied == pytest.approx((a["speed"] + b["speed"]) / 2, abs=3.0)
        moving = [f["speed"] for f in fixes if f["speed"] > 0]
        assert 30 <= sum(moving) / max(1, len(moving)) * 3.6 <= 90


def test_payloads_follow_the_spec() -> None:
    history = run_fleet(Fleet(10, seed=5), 10.0, 200)
    for i in range(10):
        fixes = by_device(history, i)
        assert [f["seq"] for f in fixes] == list(range(1, 201))
        for k, fix in enumerate(fixes):
            assert datetime.fromisoformat(fix["ts"]) == T0 + timedelta(seconds=10 * k)
            assert fix["ts"].endswith("Z") and len(fix["ts"]) == len("2026-11-26T10:00:00.000Z")
            assert -90 <= fix["lat"] <= 90 and -180 <= fix["lon"] <= 180
            assert 0 <= fix["heading"] < 360
            assert 0 <= fix["battery"] <= 1
            assert 0 < fix["accuracy"] < 20
            assert set(fix["sensors"]) == {"temperature_c", "humidity_pct", "shock_g",
                                           "light_lux"}
            assert -30 < fix["sensors"]["temperature_c"] < 40
            assert 0 <= fix["sensors"]["humidity_pct"] <= 100
        assert fixes[-1]["battery"] <= fixes[0]["battery"]


def test_fixes_lie_on_the_leg_within_their_accuracy() -> None:
    fleet = Fleet(10, seed=9)
    within = total = 0
    for k in range(120):
        fixes = fleet.step(T0 + timedelta(seconds=10 * k))
        for vehicle, fix in zip(fleet.vehicles, fixes, strict=True):
            off = haversine_m(vehicle.position, point(fix))
            assert vehicle.leg.path.distance_to_m(vehicle.position) < 1.0
            assert off < 5 * fix["accuracy"]
            within += off <= fix["accuracy"]
            total += 1
    assert within / total > 0.7


def test_vehicles_move_along_their_legs() -> None:
    fleet = Fleet(5, seed=11)
    start = [(v.leg, v.along_m) for v in fleet.vehicles]
    fleet.step(T0)
    fleet.step(T0 + timedelta(minutes=10))
    for vehicle, (leg, along) in zip(fleet.vehicles, start, strict=True):
        if vehicle.leg is leg:
            assert vehicle.along_m > along
        assert vehicle.odometer_m > 3_000  # at least 18 km/h on average over 10 min


def test_vehicles_stop_at_hubs_and_take_new_legs() -> None:
    fleet = Fleet(4, seed=2, origin=(40.0, -100.0), spread_km=5.0)  # no city: made-up hubs
    assert all(h.name.startswith("hub-") for h in fleet.hubs)
    legs = [{(v.leg.origin, v.leg.destination)} for v in fleet.vehicles]
    stopped = [0] * 4
    for k in range(4 * 3600 // 5):
        fixes = fleet.step(T0 + timedelta(seconds=5 * k))
        for i, (vehicle, fix) in enumerate(zip(fleet.vehicles, fixes, strict=True)):
            legs[i].add((vehicle.leg.origin, vehicle.leg.destination))
            stopped[i] += fix["speed"] == 0.0 and vehicle.phase is Phase.DWELLING
    assert all(len(seen) >= 3 for seen in legs)
    assert all(n > 60 for n in stopped)  # fixes standing at a hub


def test_truck_speed_bands_per_road_class() -> None:
    assert SPEED_BANDS_KMH["motorway"][1] <= 90  # EU trucks: 90 km/h speed limiter
    assert SPEED_BANDS_KMH["urban"][1] <= 50
    assert SPEED_BANDS_KMH["trunk"][0] > SPEED_BANDS_KMH["urban"][0]


def test_time_must_be_aware_and_must_not_go_backwards() -> None:
    fleet = Fleet(1)
    with pytest.raises(ValueError, match="timezone"):
        fleet.step(datetime(2026, 11, 26, 10, 0))
    fleet.step(T0)
    with pytest.raises(ValueError, match="backwards"):
        fleet.step(T0 - timedelta(seconds=1))


def test_fleet_needs_a_vehicle() -> None:
    with pytest.raises(ValueError):
        Fleet(0)


def test_format_ts_is_rfc3339_utc_with_milliseconds() -> None:
    moment = datetime(2026, 11, 26, 11, 0, 0, 250_999, tzinfo=UTC).astimezone()
    assert format_ts(moment) == "2026-11-26T11:00:00.250Z"
    assert math.isclose(
        datetime.fromisoformat(format_ts(moment)).timestamp(), moment.timestamp(), abs_tol=0.001
    )


# --- the command ------------------------------------------------------------------------


def test_simulate_without_broker_url_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPTRACK_MQTT_URL", raising=False)
    result = CliRunner().invoke(app, ["--devices", "2", "--count", "1"])
    assert result.exit_code == 2
    assert "SHIPTRACK_MQTT_URL" in result.output


def test_simulate_rejects_a_bad_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIPTRACK_MQTT_URL", raising=False)
    result = CliRunner().invoke(app, ["--mqtt-url", "http://example.org", "--count", "1"])
    assert result.exit_code == 2
    assert "mqtt://" in result.output


def test_ctrl_c_and_sigterm_stop_the_run_between_ticks_and_a_second_ctrl_c_interrupts(
) -> None:
    """The first Ctrl-C sets the run's stop event (no KeyboardInterrupt raised inside
    whatever the main thread was doing, paho's publish included, where one could leave a
    lock held); a second one interrupts as usual; SIGTERM stops without "interrupted";
    the handlers before are back afterwards; an ignored Ctrl-C is left ignored."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal,
    try:  # not ignored as in a suite started in the background
        _ctrl_c_and_sigterm_stop_the_run()
    finally:
        signal.signal(signal.SIGINT, inherited)


def _ctrl_c_and_sigterm_stop_the_run() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.event.wait(10)
        assert stop.interrupted
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            threading.Event().wait(10)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    with stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.event.wait(10)
        assert not stop.interrupted
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    # a Ctrl-C that was ignored (a background job) stays ignored
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before[0])
