"""The blend of candidates (``stacking``): on a thin history the ETA leans on whichever
candidate has done best at this stage of past trips, so it is no worse than the better
naive baseline from the first tens of trips on."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from shiptrack.eta import stacking
from shiptrack.eta.evaluate import Replay
from shiptrack.eta.model import Progress
from shiptrack.eta.speed import Motion
from shiptrack.eta.stacking import (
    LEARNED,
    PRIOR,
    Stack,
    candidates,
    conformal_level,
    pace_group,
    share_bin,
)
from shiptrack.eta.trips import parse_trip

from .test_eta_eval import KM_LON, T0

H = 3600.0
PRIOR_TRIPS = 5  # trips before the records are enough (``MIN_RECORDS``) in these runs


def test_weights_follow_the_record_and_start_from_the_prior() -> None:
    stack = Stack()
    cands = candidates(2 * H, None, 3 * H, 1 * H)
    assert stack.blend(cands, 1 * H) == pytest.approx(  # a weighted mean of the logs
        math.exp(PRIOR[0] * math.log(2 * H) + PRIOR[3] * math.log(1 * H)))
    # the trip's own speed has always been right, the physical model twice too slow
    for i in range(80):
        left = H * (1 + i % 3)
        stack.add(candidates(2 * left, None, 1.5 * left, left * 1.02), H, left)
    w = stack.weights(share_bin(H, cands))
    assert w[LEARNED] == 0.0  # no correction has been fitted: it earns nothing
    assert w[3] > 0.99
    assert stack.blend(cands, H) == pytest.approx(1 * H, rel=0.01)


def test_the_learned_candidate_is_judged_only_where_it_existed() -> None:
    stack = Stack()
    for i in range(80):
        left = H * (1 + i % 3)
        stack.add(candidates(2 * left, None, 2 * left, 2 * left), H, left)  # before a fit
    for i in range(80):
        left = H * (1 + i % 3)
        stack.add(candidates(2 * left, left, 2 * left, 2 * left), H, left)
    w = stack.weights(share_bin(H, candidates(2 * H, H, 2 * H, 2 * H)))
    assert w[LEARNED] > 0.99
    saved = Stack.from_json(stack.to_json())
    assert np.allclose(saved.weights(2), stack.weights(2))
    assert math.isnan(saved.records[2][0][LEARNED])


def vessels(n: int, seed: int = 3) -> list[dict[str, Any]]:
    """Slow craft on one lane, each at its own speed (8-30 km/h), which changes by up to
    a quarter at 40 % of the way: the fleet's speed says little, the trip's own a lot."""
    rng = random.Random(seed)
    out, start = [], float(T0)
    for k in range(n):
        kmh, km = rng.uniform(8.0, 30.0), rng.uniform(15.0, 40.0)
        later = kmh * rng.uniform(0.8, 1.25)
        points, t, x = [], start, 0.0
        while x < km:
            points.append({"ts": t, "lat": 52.0, "lon": 13.0 + x * KM_LON})
            x += (kmh if x < 0.4 * km else later) / 60.0 * 5.0
            t += 300.0
        points.append({"ts": t, "lat": 52.0, "lon": 13.0 + km * KM_LON})
        out.append({"trip_id": f"v{k:03d}", "points": points})
        start = t + 600.0
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cold_start_is_no_worse_than_the_better_baseline(seed: int) -> None:
    """30 trips from an empty history: once the first few have arrived (the prior's:
    fewer than ``MIN_RECORDS`` records), the ETA is no worse than the better baseline at
    25/50/75 % (without the blend it is 10-140 % worse here: the physical model with
    the default profile, and no correction before ``FIRST_FIT_TRIPS``)."""
    report = Replay().run([parse_trip(r) for r in vessels(30, seed)])

    def mae(model: str, k: int) -> float:
        return float(np.abs(report.errors[model][k][PRIOR_TRIPS:]).mean())

    for k in (25, 50, 75):
        best = min(mae("constant_speed", k), mae("avg_speed_so_far", k))
        assert mae("shiptrack", k) <= best * 1.02, (k, mae("shiptrack", k), best)


def test_a_candidate_on_few_records_must_beat_the_better_baseline_clearly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrinkage by sample count: the physical model is a little better on average than
    the trip's own speed here (errors 0 or 18 %, against always 10 %), but noisy; on 60
    records that is not enough to take the lead from the baseline, on 1,500 it is."""

    def weights(n: int) -> NDArray[np.float64]:
        stack = Stack()
        for i in range(n):
            stack.add(candidates(H * (1.0 if i % 2 else 1.18), None, 1.5 * H, 1.1 * H), H, H)
        return stack.weights(b)

    b = share_bin(H, candidates(H, None, 1.5 * H, 1.1 * H))
    assert {share_bin(H, candidates(H * p, None, 1.5 * H, 1.1 * H)) for p in (1.0, 1.18)} == {b}
    monkeypatch.setattr(stacking, "Z", 1.0)
    few, many = weights(60), weights(1_500)
    assert few[3] > 0.6 > few[0]
    assert many[0] > 0.6 > many[3]
    monkeypatch.setattr(stacking, "Z", 0.0)  # the default: by the mean error alone, it leads
    assert weights(60)[0] > 0.6


def test_the_interval_is_conformalised_around_what_is_output() -> None:
    """An interval that was too narrow (+-5 % around the blend, arrivals spread +-30 %)
    is widened until it holds about 80 % of arrivals; without records it is left as it
    is; the ends always contain the blend."""
    rng = random.Random(5)
    stack = Stack()
    cands = candidates(H, None, 1.2 * H, H)
    assert stack.interval(cands, H, H, 0.95 * H, 1.05 * H) is None

    def arrival() -> float:
        return H * math.exp(rng.uniform(-0.3, 0.3))

    for _ in range(1_000):
        stack.add(cands, H, arrival(), (H, 0.95 * H, 1.05 * H))
    found = stack.interval(cands, H, H, 0.95 * H, 1.05 * H)
    assert found is not None
    low, high = found
    assert low == pytest.approx(H * math.exp(-0.24), rel=0.03)  # the 10th percentile
    assert high == pytest.approx(H * math.exp(0.24), rel=0.03)  # the 90th
    inside = sum(low <= arrival() <= high for _ in range(2_000)) / 2_000
    assert 0.75 <= inside <= 0.85
    # the offsets are relative: a blend twice as long gets an interval twice as long
    low2, high2 = stack.interval(cands, H, 2 * H, 1.9 * H, 2.1 * H) or (0.0, 0.0)
    assert (low2, high2) == pytest.approx((2 * low, 2 * high), rel=1e-6)
    # the ends never pass the blend
    low3, high3 = stack.interval(cands, H, H, 1.2 * H, 1.3 * H) or (0.0, 0.0)
    assert low3 <= H <= high3
    saved = Stack.from_json(stack.to_json())
    assert saved.interval(cands, H, H, 0.95 * H, 1.05 * H) == pytest.approx(found, rel=1e-3)


def test_the_estimate_carries_the_conformal_interval_and_its_late_probability() -> None:
    """After a replay the interval an estimate gives is the conformalised one, and its
    ``late_probability`` agrees with it: 10 % beyond the high end, 90 % beyond the low."""
    replay = Replay()
    replay.run([parse_trip(r) for r in vessels(40)])
    trip = parse_trip(vessels(41)[-1])
    est, motion, progress = replay.estimator, Motion(), Progress()
    plan = est.plan(trip.destination)
    for t, lat, lon in list(zip(trip.ts, trip.lats, trip.lons, strict=True))[:6]:
        est.observe_at(motion, t, lat, lon)
        result = est.estimate_at(plan, progress, motion, t, lat, lon)
    blended, low, high = result.band
    stack = replay.history.stack
    assert stack.interval(result.candidates[:-1], result.candidates[-1], blended, low, high) \
        == pytest.approx((result.eta_low.timestamp() - t, result.eta_high.timestamp() - t),
                         abs=1e-3)
    assert result.eta.timestamp() - t == pytest.approx(blended, abs=1e-3)
    assert result.outlook is not None
    assert result.outlook.late_probability(result.eta_high.timestamp() - t) == \
        pytest.approx(0.1, abs=1e-3)
    assert result.outlook.late_probability(result.eta_low.timestamp() - t) == \
        pytest.approx(0.9, abs=1e-3)


def test_a_thin_record_moves_the_ends_by_the_finite_sample_conformal_level() -> None:
    """With 30 past arrivals 1..30 % above an interval of no width, the high end moves by
    split conformal's finite-sample quantile (level ceil(31 * 0.9) / 30 = 28/30), not the
    plain 90th percentile: on tens of trips the plain one holds a little less than 90 %
    of the next arrivals below the high end (the start of small sets held 0.71)."""
    stack = Stack()
    cands = candidates(H, None, 1.2 * H, H)
    for k in range(1, 31):
        stack.add(cands, H, H * math.exp(k / 100.0), (H, H, H))
    assert conformal_level(30) == pytest.approx(28 / 30)
    assert conformal_level(3_000) == pytest.approx(0.9, abs=1e-3)
    found = stack.interval(cands, H, H, H, H)
    assert found is not None
    expected = 0.01 + (28 / 30) * 29 * 0.01  # numpy's linear quantile of 0.01..0.30 there
    assert found[1] == pytest.approx(H * math.exp(expected), rel=1e-6)
    assert found[1] > H * math.exp(float(np.quantile([k / 100.0 for k in range(1, 31)], 0.9)))


def test_the_interval_learns_from_records_made_with_a_correction_once_it_has_them() -> None:
    """Arrivals spread +-60 % before a correction existed, +-10 % since: once 30 records
    with a correction are in, the interval is the spread of those alone (the old ones
    made it too wide: Porto's taxis held 0.87-0.88 with them); before, every record."""
    rng = random.Random(11)
    stack = Stack()
    before, after = candidates(H, None, H, H), candidates(H, H, H, H)
    for _ in range(200):
        stack.add(before, H, H * math.exp(rng.uniform(-0.6, 0.6)), (H, H, H))
    wide = stack.interval(after, H, H, H, H)
    assert wide is not None and wide[1] == pytest.approx(H * math.exp(0.48), rel=0.05)
    for _ in range(60):
        stack.add(after, H, H * math.exp(rng.uniform(-0.1, 0.1)), (H, H, H))
    narrow = stack.interval(after, H, H, H, H)
    assert narrow is not None
    assert narrow[0] == pytest.approx(H * math.exp(-0.08), rel=0.03)
    assert narrow[1] == pytest.approx(H * math.exp(0.08), rel=0.03)


def test_the_interval_is_split_by_the_trips_pace_against_the_blend() -> None:
    """Trips whose own speed so far says later than the blend arrived 20-40 % after it,
    the others within +-10 %: the first get an interval shifted late, the others a narrow
    one, each holding about 80 % of its own kind; a group with too few scores, and the
    start (the trip has no pace of its own yet), take the whole pool's offsets."""
    rng = random.Random(7)
    stack = Stack()
    late = candidates(H, None, H, 1.5 * H)  # the trip's own speed: 50 % more time left
    even = candidates(H, None, H, H)
    assert (pace_group(late, H), pace_group(even, H), pace_group(candidates(
        H, None, H, 0.5 * H), H)) == (2, 1, 0)
    for _ in range(300):
        stack.add(late, H, H * math.exp(rng.uniform(0.2, 0.4)), (H, H, H))
        stack.add(even, H, H * math.exp(rng.uniform(-0.1, 0.1)), (H, H, H))
    found_late, found_even = stack.interval(late, H, H, H, H), stack.interval(even, H, H, H, H)
    assert found_late is not None and found_even is not None
    assert found_late[1] == pytest.approx(H * math.exp(0.38), rel=0.02)  # its 90th percentile
    assert found_late[0] == H  # the ends contain the blend: all of them came later
    assert found_even == pytest.approx((H * math.exp(-0.08), H * math.exp(0.08)), rel=0.02)
    # no record of a trip that says sooner: the pool of both kinds, wider than either
    whole = stack.interval(candidates(H, None, H, 0.5 * H), H, H, H, H)
    assert whole is not None and whole[1] == pytest.approx(H * math.exp(0.36), rel=0.03)
    assert whole[0] == pytest.approx(H * math.exp(-0.06), rel=0.03)
    # the start is one pool whatever the pace
    start = Stack()
    for _ in range(300):
        start.add(late, 0.0, H * math.exp(rng.uniform(0.2, 0.4)), (H, H, H))
        start.add(even, 0.0, H * math.exp(rng.uniform(-0.1, 0.1)), (H, H, H))
    assert start.interval(late, 0.0, H, H, H) == start.interval(even, 0.0, H, H, H)


def test_a_pace_group_is_taken_from_the_records_made_with_a_correction() -> None:
    """40 late trips before any correction (arrivals 0-60 % after the blend), then 300
    with one (+-5 %), 20 of them late: the late group among the corrected records is too
    thin (under ``MIN_GROUP``), so a late estimate takes the corrected pool's narrow
    offsets, not those of its group's records from before the correction."""
    rng = random.Random(3)
    stack = Stack()
    late_before = candidates(H, None, H, 1.5 * H)
    late, even = candidates(H, H, H, 1.5 * H), candidates(H, H, H, H)
    for _ in range(40):
        stack.add(late_before, H, H * math.exp(rng.uniform(0.0, 0.6)), (H, H, H))
    for i in range(300):
        stack.add(late if i % 15 == 0 else even, H, H * math.exp(rng.uniform(-0.05, 0.05)),
                  (H, H, H))
    found = stack.interval(late, H, H, H, H)
    assert found is not None
    assert found[1] == pytest.approx(H * math.exp(0.04), rel=0.01)


def test_disagreeing_marks_the_candidates_far_from_the_others_median() -> None:
    assert stacking.disagreeing(candidates(H, None, 1.2 * H, 0.9 * H)) == 0
    own = stacking.CANDIDATES.index("own")
    assert stacking.disagreeing(candidates(H, None, 1.2 * H, 40 * H)) == 1 << own
    assert stacking.disagreeing(candidates(12 * H, 11 * H, H, 1.1 * H, H)) == 0b11


def own_usually_right(stack: Stack, far: int) -> None:
    """Records of one bin: the trip's own speed right when it agrees with the others (the
    physical model 20 % off), but ``far`` records where it was 5 times too long (after a
    long wait at the start) and the physical model right."""
    for i in range(1400):
        left = H * (1 + 0.1 * (i % 3))
        stack.add(candidates(1.2 * left, None, 1.5 * left, left, 1.4 * left), H, left)
    for i in range(far):
        left = H * (1 + 0.1 * (i % 3))
        stack.add(candidates(left, None, 1.5 * left, 5 * left, 1.4 * left), H, left)


def test_candidates_that_disagree_are_weighed_by_the_records_that_disagreed_alike() -> None:
    stack = Stack()
    own_usually_right(stack, far=stacking.MIN_RECORDS)
    agreeing = candidates(1.2 * H, None, 1.5 * H, H, 1.4 * H)
    assert stack.blend(agreeing, H) == pytest.approx(H, rel=0.02)  # own: best on the whole
    apart = candidates(H, None, 1.5 * H, 5 * H, 1.4 * H)
    assert stack.blend(apart, H) == pytest.approx(H, rel=0.05)  # not 5 h: physical is
    saved = Stack.from_json(stack.to_json())  # the disagreements are recomputed on load
    assert saved.blend(apart, H) == pytest.approx(stack.blend(apart, H))


def test_without_enough_records_alike_the_bins_weights_hold() -> None:
    stack = Stack()
    own_usually_right(stack, far=stacking.MIN_RECORDS - 1)
    apart = candidates(H, None, 1.5 * H, 5 * H, 1.4 * H)
    b = share_bin(H, apart)
    assert np.allclose(stack.weights(b, stacking.disagreeing(apart)), stack.weights(b))


def test_a_bin_keeps_its_last_records_oldest_first_and_round_trips() -> None:
    stack = Stack()
    extra = 5
    for i in range(stacking.MAX_RECORDS + extra):  # all in one bin: the same share done
        stack.add(candidates(2 * H, None, 3 * H, 1 * H), H, float(i), (H, 0.5 * H, 2 * H))
    b = share_bin(H, candidates(2 * H, None, 3 * H, 1 * H))
    kept = stack.records[b]
    assert len(kept) == stacking.MAX_RECORDS
    assert kept[0][stacking.ACTUAL] == float(extra)  # the oldest went first
    assert kept[-1][stacking.ACTUAL] == float(stacking.MAX_RECORDS + extra - 1)
    saved = stack.to_json()
    assert Stack.from_json(saved).to_json() == saved
    # a record saved before bands were kept (no band) is read with none
    older = Stack.from_json([[[2 * H, None, 3 * H, 1 * H, 3 * H, 60.0]]])
    assert older.records[0].shape == (1, stacking.WIDTH)
    assert older.records[0][0][stacking.ACTUAL] == 60.0
    assert all(math.isnan(v) for v in older.records[0][0][stacking.ACTUAL + 1:])
    assert older.offsets(0) is None  # a record without a band scores no interval
