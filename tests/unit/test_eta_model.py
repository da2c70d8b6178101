"""The estimator on hand-made trips: distance left, speed, stops, learning, state."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from shiptrack.eta import EtaEstimator, EtaState, History, Motion, Progress, Route
from shiptrack.eta.geo import M_PER_DEG, haversine_m
from shiptrack.eta.profile import DEFAULT_KMH
from shiptrack.eta.rests import BREAK_S
from shiptrack.fix import Fix

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
LAT = 52.0
KM_LON = 1000.0 / (M_PER_DEG * math.cos(math.radians(LAT)))


def east(km: float) -> tuple[float, float]:
    return LAT, 13.0 + km * KM_LON


def fix(minutes: float, km: float) -> Fix:
    lat, lon = east(km)
    return Fix(device_id="d1", ts=T0 + timedelta(minutes=minutes), lat=lat, lon=lon)


def drive(kmh: float, hours: float, start_min: float = 0.0, start_km: float = 0.0,
          every_min: float = 1.0) -> list[Fix]:
    n = round(hours * 60 / every_min)
    return [fix(start_min + i * every_min, start_km + kmh * i * every_min / 60)
            for i in range(n + 1)]


def stand(minutes: float, start_min: float, km: float) -> list[Fix]:
    return [fix(start_min + m, km) for m in range(5, int(minutes) + 1, 5)]


def learn(history: History, fixes: list[Fix]) -> None:
    """What ingest's learning would do with a device's stored positions."""
    estimator, motion = EtaEstimator(history), Motion()
    for f in fixes:
        step = estimator.observe(motion, f)
        if step is not None:
            history.learn_step(step)


def minutes_left(result_eta: datetime, f: Fix) -> float:
    return (result_eta - f.ts).total_seconds() / 60


ROUTE = Route([east(k) for k in range(0, 401, 5)])  # 400 km east


def test_with_no_history_the_default_speed_and_band() -> None:
    estimator = EtaEstimator()
    plan = estimator.plan(east(400), ROUTE)
    state = EtaState()
    result = estimator.update(state, plan, fix(0, 300))
    assert result.remaining_m == pytest.approx(100_000.0, rel=1e-3)
    assert minutes_left(result.eta, fix(0, 300)) == pytest.approx(100 / DEFAULT_KMH * 60,
                                                                  rel=1e-3)
    assert result.eta_low < result.eta < result.eta_high
    assert result.kind == "moving"


def test_with_no_history_the_drivers_hours_rules_hold() -> None:
    estimator = EtaEstimator()
    plan = estimator.plan(east(400), ROUTE)
    result = estimator.estimate(plan, Progress(), Motion(), fix(0, 0))
    driving = 400 / DEFAULT_KMH * 60  # 6.2 h: a break after 4.5 h
    assert minutes_left(result.eta, fix(0, 0)) == pytest.approx(driving + 45 * 1.15, abs=1)
    # 1000 km, 15.4 h: a break, a daily rest after 9 h, and a break 4.5 h after that
    far = Route([east(k) for k in range(0, 1001, 5)])
    result = estimator.estimate(estimator.plan(east(1000), far), Progress(), Motion(),
                                fix(0, 0))
    assert minutes_left(result.eta, fix(0, 0)) == pytest.approx(
        1000 / DEFAULT_KMH * 60 + 2 * 45 * 1.15 + 11 * 60 * 1.045, abs=1)


def test_a_learned_profile_sets_the_speed_of_the_road_ahead() -> None:
    history = History()
    learn(history, drive(90.0, 4.0))  # 360 km of this road at 90 km/h
    estimator = EtaEstimator(history)
    result = estimator.estimate(estimator.plan(east(400), ROUTE), Progress(), Motion(),
                                fix(0, 0))
    assert minutes_left(result.eta, fix(0, 0)) == pytest.approx(400 / 90 * 60, rel=0.05)


def test_recent_speed_slows_the_next_kilometres_only() -> None:
    history = History()
    learn(history, drive(80.0, 5.0))
    estimator = EtaEstimator(history)
    plan = estimator.plan(east(250), Route([east(k) for k in range(0, 251, 5)]))
    state = EtaState()
    for f in drive(20.0, 0.5, start_km=100.0):  # a jam: 20 km/h for half an hour
        result = estimator.update(state, plan, f)
    assert state.motion.recent_kmh == pytest.approx(20.0, rel=0.02)
    assert state.motion.speed_factor < 0.5
    assert result.kind == "moving"
    jammed = result.predicted_s / 60 - 140 / 80 * 60  # the physical model's own prediction
    assert 5.0 < jammed < 40.0  # slower for a while ahead, not all the way at 20 km/h


def test_learned_breaks_are_inserted_where_the_driving_clock_reaches_them() -> None:
    history = History()
    for day in range(8):  # every day: 2 h driving, a 50-minute break, 2 h driving
        start = day * 24 * 60
        fixes = drive(80.0, 2.0, start_min=start) + stand(50, start + 120, 160.0) \
            + drive(80.0, 2.0, start_min=start + 171, start_km=160.0)
        learn(history, fixes)
    assert history.rests.typical(BREAK_S) == pytest.approx(51 * 60, abs=120)
    estimator = EtaEstimator(history)
    plan = estimator.plan(east(400), ROUTE)
    long_way = estimator.estimate(plan, Progress(), Motion(), fix(0, 0))
    assert minutes_left(long_way.eta, fix(0, 0)) == pytest.approx(300 + 51, abs=8)
    short = estimator.plan(east(100), Route([east(0), east(100)]))
    short_way = estimator.estimate(short, Progress(), Motion(), fix(0, 0))
    assert minutes_left(short_way.eta, fix(0, 0)) == pytest.approx(75, abs=3)


def test_a_stop_in_progress_adds_what_such_stops_still_last() -> None:
    history = History()
    for day in range(8):
        start = day * 24 * 60
        learn(history, drive(80.0, 1.0, start_min=start) + stand(50, start + 60, 80.0)
              + drive(80.0, 1.0, start_min=start + 111, start_km=80.0))
    estimator = EtaEstimator(history)
    plan = estimator.plan(east(400), ROUTE)
    state = EtaState()
    for f in drive(80.0, 1.0) + stand(20, 60, 80.0):
        result = estimator.update(state, plan, f)
    assert state.motion.still_for(f.ts.timestamp()) == pytest.approx(20 * 60)
    assert result.kind.startswith("stopped")
    left = result.predicted_s / 60 - 320 / 80 * 60  # the physical model's own prediction
    assert left == pytest.approx(31, abs=6)  # a 51-minute stop, 20 minutes into it


def test_the_wait_at_the_origin_is_not_a_stop_in_progress() -> None:
    history = History()
    for day in range(8):
        start = day * 24 * 60
        learn(history, drive(80.0, 1.0, start_min=start) + stand(600, start + 60, 80.0))
    estimator = EtaEstimator(history)
    plan = estimator.plan(east(300), Route([east(k) for k in range(0, 301, 5)]))
    motion = Motion()
    for f in [fix(0, 0), *stand(60, 0, 0.0)]:  # standing at the origin an hour
        estimator.observe(motion, f)
    result = estimator.estimate(plan, Progress(), motion, f)  # the shipment's first fix
    assert minutes_left(result.eta, f) == pytest.approx(300 / 80 * 60, rel=0.03)


def test_without_a_route_great_circle_times_the_detour_factor() -> None:
    history = History()
    for _ in range(20):
        history.learn_trip(130_000.0, 100_000.0, 3600.0)
    assert history.detour == pytest.approx((20 * 1.3 + 5 * 1.25) / 25)
    estimator = EtaEstimator(history)
    dest = (52.5, 14.0)
    result = estimator.estimate(estimator.plan(dest), Progress(), Motion(), fix(0, 0))
    direct = haversine_m(*east(0), *dest)
    assert result.remaining_m == pytest.approx(direct * history.detour)
    assert minutes_left(result.eta, fix(0, 0)) == pytest.approx(
        result.remaining_m / 1000 / DEFAULT_KMH * 60, rel=0.01)


def test_far_off_the_route_the_shorter_of_rejoining_and_going_direct() -> None:
    estimator = EtaEstimator()
    plan = estimator.plan(east(400), ROUTE)
    lat, lon = east(390)
    off = Fix(device_id="d1", ts=T0, lat=lat + 20_000 / M_PER_DEG, lon=lon)  # 20 km north
    result = estimator.estimate(plan, Progress(), Motion(), off)
    direct = haversine_m(off.lat, off.lon, *east(400)) * 1.25
    assert result.remaining_m == pytest.approx(direct)
    near = Fix(device_id="d1", ts=T0, lat=LAT + 2_000 / M_PER_DEG, lon=east(100)[1])
    result = estimator.estimate(plan, Progress(), Motion(), near)
    assert result.remaining_m == pytest.approx(300_000 + 2_000 * 1.25, rel=1e-3)


def test_state_and_history_survive_serialisation() -> None:
    history = History()
    learn(history, drive(85.0, 3.0) + stand(60, 180, 255.0) + drive(85.0, 1.0, 241, 255.0))
    for r in range(50):
        history.calibration.add("moving", 3600.0, 3600.0 + 30.0 * r)
    estimator = EtaEstimator(history)
    plan = estimator.plan(east(400), ROUTE)
    state = EtaState()
    for f in drive(70.0, 1.0):
        estimator.update(state, plan, f)
    again = msgspec.json.decode(msgspec.json.encode(state), type=EtaState)
    copy = EtaEstimator(History.from_json(msgspec.json.decode(msgspec.json.encode(
        history.to_json()))))
    nxt = fix(61, 71.0)
    restored = copy.update(again, copy.plan(east(400), ROUTE), nxt)
    original = estimator.update(state, plan, nxt)
    for a, b in zip(restored[:3], original[:3], strict=True):
        assert abs((a - b).total_seconds()) < 1.0  # sums are stored to a decimetre
    assert restored.remaining_m == original.remaining_m
    assert restored.kind == original.kind


def test_older_fixes_do_not_move_the_state() -> None:
    estimator = EtaEstimator()
    motion = Motion()
    estimator.observe(motion, fix(10, 10))
    assert estimator.observe(motion, fix(5, 5)) is None
    assert estimator.observe(motion, fix(10, 10)) is None
    assert motion.ts == fix(10, 10).ts.timestamp()


def test_where_the_profile_knows_nothing_the_device_own_pace_counts() -> None:
    estimator = EtaEstimator()  # nothing learned anywhere
    plan = estimator.plan(east(400), ROUTE)
    state = EtaState()
    for f in drive(90.0, 3.0):
        result = estimator.update(state, plan, f)
    assert minutes_left(result.eta, f) == pytest.approx(130 / 90 * 60, rel=0.05)


def test_a_stop_in_progress_before_any_history_goes_by_the_rules() -> None:
    estimator = EtaEstimator()
    plan = estimator.plan(east(400), ROUTE)
    state = EtaState()
    for f in drive(80.0, 4.5) + stand(30, 270, 360.0):  # 30 minutes into a break
        result = estimator.update(state, plan, f)
    assert result.kind.startswith("stopped")
    # the physical model's own prediction (the ETA blends it with the trip's own speed
    # until past trips say how to weigh them: stacking)
    assert result.predicted_s / 60 == pytest.approx(40 / 80 * 60 + 45 * 1.15 - 30, abs=5)
    state = EtaState()
    for f in drive(80.0, 9.0, every_min=5.0) + stand(60, 540, 720.0):  # an hour into a rest
        estimator.update(state, estimator.plan(east(800), Route([east(0), east(800)])), f)
    result = estimator.estimate(estimator.plan(east(800), Route([east(0), east(800)])),
                                state.progress, state.motion, f)
    assert result.predicted_s / 60 == pytest.approx(11 * 60 * 1.045 - 60 + 60, abs=15)


def test_a_toss_up_without_a_record_gets_an_interval_over_both_outcomes() -> None:
    estimator = EtaEstimator()
    # 4.65 h of driving ahead at the default speed: the break comes, or just does not
    km = 4.65 * DEFAULT_KMH
    route = Route([east(0), east(km)])
    result = estimator.estimate(estimator.plan(east(km), route), Progress(), Motion(),
                                fix(0, 0))
    assert result.kind == "moving-break"
    for outcome in (4.65, 4.65 + 45 * 1.15 / 60):  # without the break, and with it
        assert result.eta_low < fix(0, 0).ts + timedelta(hours=outcome) < result.eta_high


def test_a_gap_in_the_fixes_is_not_the_device_s_pace() -> None:
    """80 km/h for an hour, then no fix for 20 minutes and the device 4 km on (a taxi's
    empty run between fares, a tunnel, a device off): the gap's 12 km/h is not its pace,
    so neither the recent speed nor the profile learns it (they did: the next ETA was as
    slow as the gap); of the 20 minutes, the 3 the 4 km need at 80 km/h count as
    driving, the rest as standing."""
    history = History()
    estimator, motion = EtaEstimator(history), Motion()
    fixes = [*drive(80.0, 1.0), fix(80.0, 84.0)]
    steps = [s for f in fixes if (s := estimator.observe(motion, f)) is not None]
    for step in steps:
        history.learn_step(step)
    gap = steps[-1]
    assert gap.seconds == 20 * 60 and not gap.moving and gap.stop is None
    assert motion.recent_kmh == pytest.approx(80.0, rel=0.01)
    assert motion.since_break_s == pytest.approx(63 * 60, abs=1)
    assert history.profile.mean_kmh == pytest.approx(80.0, rel=0.05)  # 65 before any
    # a gap long enough to hold a break besides the drive resets the clock like one
    estimator.observe(motion, fix(150.0, 90.0))  # 70 minutes for 6 km
    assert motion.since_break_s == pytest.approx(4.5 * 60, abs=1) and motion.break_seen


def test_a_tracker_that_reports_every_15_minutes_has_steps_not_gaps() -> None:
    """Steps of a quarter of an hour are that tracker's usual ones: its pace is learned
    from them; only a silence five times as long is a gap."""
    history = History()
    estimator, motion = EtaEstimator(history), Motion()
    sparse = [*drive(60.0, 3.0, every_min=15.0), fix(300.0, 150.0)]  # then 2 h for 30 km
    steps = [s for f in sparse if (s := estimator.observe(motion, f)) is not None]
    assert [s.moving for s in steps] == [True] * 12 + [False]
    assert motion.recent_kmh == pytest.approx(60.0, rel=0.01)
    assert motion.usual_step_s == pytest.approx(15 * 60)
