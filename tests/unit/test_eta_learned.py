"""The learned side of the ETA: the distribution of the time left (``outlook``), the
history of similar trips (``lanes``), the conformalised correction (``correction``), and
``eta-eval`` reading gzipped trips and learning the correction prequentially."""

from __future__ import annotations

import gzip
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shiptrack.app.cli import app
from shiptrack.eta.alerts import is_at_risk, late_probability
from shiptrack.eta.correction import FIRST_FIT_TRIPS, REFIT_GROWTH, Correction, Learner, fit
from shiptrack.eta.evaluate import Replay
from shiptrack.eta.features import FEATURES, features
from shiptrack.eta.history import History
from shiptrack.eta.lanes import Lanes, lane_keys
from shiptrack.eta.model import EtaEstimator, EtaResult, Progress
from shiptrack.eta.outlook import Outlook
from shiptrack.eta.speed import Motion
from shiptrack.eta.trips import parse_trip

from .test_eta_eval import KM_LON, T0, trip

H = 3600.0


# -- outlook: quantiles, mixtures, late probability ------------------------------------------

def test_outlook_goes_through_its_quantiles() -> None:
    outlook = Outlook.from_quantiles(3000.0, 3600.0, 5000.0)
    assert outlook.quantile(0.1) == pytest.approx(3000.0, rel=1e-6)
    assert outlook.quantile(0.5) == pytest.approx(3600.0, rel=1e-6)
    assert outlook.quantile(0.9) == pytest.approx(5000.0, rel=1e-6)
    assert outlook.late_probability(3600.0) == pytest.approx(0.5)
    assert outlook.late_probability(5000.0) == pytest.approx(0.1)
    assert outlook.late_probability(0.0) == 1.0  # the promise has passed: late for sure


def test_a_rest_that_may_come_is_a_probability_not_a_window_over_both() -> None:
    # 2 h without a rest (70 %), 13 h with it (30 %), each +-10 %
    without = Outlook.part(0.7, 1.8 * H, 2.0 * H, 2.2 * H)
    with_rest = Outlook.part(0.3, 11.7 * H, 13.0 * H, 14.3 * H)
    outlook = Outlook((without, with_rest))
    # promised in 5 h: late only if the rest comes
    assert outlook.late_probability(5 * H) == pytest.approx(0.3, abs=0.001)
    # an unlikely rest (5 %) stays out of the 80 % interval
    rare = Outlook((Outlook.part(0.95, 1.8 * H, 2.0 * H, 2.2 * H),
                    Outlook.part(0.05, 11.7 * H, 13.0 * H, 14.3 * H)))
    assert rare.quantile(0.9) < 2.5 * H
    assert rare.late_probability(5 * H) == pytest.approx(0.05, abs=0.001)


def result_with(outlook: Outlook, at: datetime, eta_h: float) -> EtaResult:
    eta = at + timedelta(hours=eta_h)
    return EtaResult(eta, eta, eta, 1000.0, eta_h * H, "moving", outlook)


def test_late_probability_and_at_risk_from_it() -> None:
    at = datetime(2026, 3, 2, 8, tzinfo=UTC)
    outlook = Outlook((Outlook.part(0.7, 1.8 * H, 2.0 * H, 2.2 * H),
                       Outlook.part(0.3, 11.7 * H, 13.0 * H, 14.3 * H)))
    result = result_with(outlook, at, 2.0)
    promise = at + timedelta(hours=5)
    chance = late_probability(result, promise, at)
    assert chance == pytest.approx(0.3, abs=0.001)
    assert late_probability(result, None, at) is None
    assert not is_at_risk(result, promise, "late_probability", chance, 0.5)
    assert is_at_risk(result, promise, "late_probability", chance, 0.25)
    assert not is_at_risk(result, None, "late_probability", 1.0, 0.5)
    assert late_probability(result, at - timedelta(minutes=1), at) == 1.0


# -- lanes -----------------------------------------------------------------------------------

def test_lanes_remember_how_long_it_took_from_here_to_there() -> None:
    lanes = Lanes()
    keys = lane_keys(30.26, -97.74, 30.40, -97.71, 16_000.0)
    assert lanes.features(keys)[:2] == [0.0, pytest.approx(math.nan, nan_ok=True)]
    for seconds in (1200.0, 1300.0, 1250.0):
        lanes.add(keys, seconds)
    n, log_s = lanes.features(keys)[:2]
    assert n == pytest.approx(math.log1p(3)) and log_s == pytest.approx(math.log(1250.0))
    # the approach to the destination is shared by trips from elsewhere at that distance
    other = lane_keys(30.52, -97.69, 30.40, -97.71, 16_500.0)
    assert other[2] == keys[2] and other[0] != keys[0]
    assert Lanes.from_json(json.loads(json.dumps(lanes.to_json()))).features(keys) \
        == lanes.features(keys)


def test_features_never_see_the_arrival_and_name_every_column() -> None:
    row = features(t=T0, lon=13.0, predicted_s=1800.0, remaining_m=20_000.0,
                   direct_m=15_000.0, elapsed_s=600.0, travelled_m=8_000.0, recent_kmh=45.0,
                   still_s=0.0, fleet_kmh=40.0, kind="moving", step_ms=12.0,
                   closing_ms=10.0, closed_m=7_000.0,
                   lanes=[0.0, math.nan, 0.0, math.nan, 0.0, math.nan, math.nan, math.nan])
    assert len(row) == len(FEATURES)
    named = dict(zip(FEATURES, row, strict=True))
    assert named["log_elapsed_s"] == pytest.approx(math.log1p(600.0))
    assert named["log_trip_kmh"] == pytest.approx(math.log(48.0))
    assert named["local_hour"] == pytest.approx(8.0 + 13.0 / 15.0)  # solar time at 13° E


# -- the correction --------------------------------------------------------------------------

def synthetic(n: int) -> tuple[list[list[float]], list[float]]:
    """Rows whose log ratio is +0.7 when the first feature is high, -0.3 when it is low."""
    rows, ys = [], []
    for i in range(n):
        row = [math.nan] * len(FEATURES)
        row[0] = float(i % 2) * 5.0 + (i % 7) * 0.01
        rows.append(row)
        ys.append(0.7 if i % 2 else -0.3)
    return rows, ys


def test_the_correction_learns_the_bias_and_conformal_scores_widen_the_band() -> None:
    rows, ys = synthetic(400)
    correction = Correction(fit(rows, ys))
    high, low = correction.raw(rows[1]), correction.raw(rows[0])
    assert high[1] == pytest.approx(0.7, abs=0.05) and low[1] == pytest.approx(-0.3, abs=0.05)
    assert correction.band(high, 0.5)[1] == pytest.approx(high[1])  # no scores: as is
    for i in range(200):  # past predictions that were 0.5 too low, spread +-0.1
        correction.score(high, 0.5, high[1] + 0.5 + (i % 21 - 10) / 100.0)
    lo, mid, hi = correction.band(high, 0.5)
    assert mid == pytest.approx(high[1] + 0.5, abs=0.02)
    assert hi >= mid + 0.07 and lo <= mid - 0.07
    saved = Correction.from_json(json.loads(json.dumps(correction.to_json())))
    assert saved is not None and saved.raw(rows[1]) == pytest.approx(high)
    assert saved.band(high, 0.5) == pytest.approx((lo, mid, hi), abs=1e-3)


def test_learner_refits_as_trips_arrive() -> None:
    learner = Learner()
    rows, ys = synthetic(200)
    for row, y in zip(rows, ys, strict=True):
        learner.add(row, y)
    for _ in range(FIRST_FIT_TRIPS - 1):
        learner.trip_done()
    assert not learner.due()
    learner.trip_done()
    assert learner.due()
    learner.refit(None)
    assert not learner.due()
    grown = max(1, math.ceil(REFIT_GROWTH * FIRST_FIT_TRIPS))
    for _ in range(grown - 1):
        learner.trip_done()
    assert not learner.due()
    learner.trip_done()
    assert learner.due()



def test_the_learner_keeps_the_samples_of_every_trip_of_a_large_set() -> None:
    """A fit sees every sample of about 10,000 trips (20 estimates each), not only the
    last 3,000 trips' (the 60,000 it kept cost the ships 0.2 min at 75 %, docs/ETA.md)."""
    learner = Learner()
    for i in range(10_000 * 20):
        learner.add([float(i)], 0.0)
    assert len(learner.rows) == 200_000 and learner.rows[0] == [0.0]

# -- eta-eval: gzipped input, the correction learned prequentially ---------------------------

def bus_line(n: int) -> list[dict[str, Any]]:
    """``n`` runs of one line, one after another: 12 km east at 36 km/h, then 10 minutes
    standing 300 m before the end (a layover the physical model cannot know of)."""
    out = []
    for k in range(n):
        start = T0 + k * 3600.0
        base = trip(f"run-{k}", start, 36.0, km=12.0, every_min=2.0, route=False)
        points = base["points"][:-1]
        last = points[-1]
        stand = [{"ts": last["ts"] + 60.0 * (i + 1), "lat": 52.0, "lon": last["lon"]}
                 for i in range(10)]
        end = {"ts": stand[-1]["ts"] + 120.0, "lat": 52.0, "lon": 13.0 + 12.0 * KM_LON}
        base["points"] = [*points, *stand, end]
        out.append(base)
    return out


def test_eval_learns_the_correction_and_it_beats_the_physical_model() -> None:
    trips = [parse_trip(r) for r in bus_line(FIRST_FIT_TRIPS + 30)]
    late: list[float] = []
    for refit in (True, False):
        replay = Replay()
        replay.refit = refit
        report = replay.run(trips)
        assert (replay.history.correction is not None) is refit  # fitted once enough arrived
        errors = [abs(e) for k in (0, 25, 50, 75) for e in report.errors["shiptrack"][k][-20:]]
        late.append(sum(errors) / len(errors))
    assert late[0] < late[1] / 2  # the layover is learned


def test_eta_eval_reads_gzipped_trips(tmp_path: Path) -> None:
    runs = [trip("A", T0, 50.0), trip("B", T0 + 3 * H, 100.0, every_min=3.0)]
    text = "".join(json.dumps(r) + "\n" for r in runs)
    plain, packed = tmp_path / "trips.jsonl", tmp_path / "trips.jsonl.gz"
    plain.write_text(text)
    with gzip.open(packed, "wt", encoding="utf-8") as f:
        f.write(text)
    outs = [CliRunner().invoke(app, ["eta-eval", str(p), "--json"]) for p in (plain, packed)]
    assert all(o.exit_code == 0 for o in outs), [o.output for o in outs]
    assert json.loads(outs[1].stdout) == json.loads(outs[0].stdout)
    assert json.loads(outs[1].stdout)["trips"] == 2
    broken = tmp_path / "broken.gz"
    broken.write_bytes(gzip.compress(text.encode())[:40])
    result = CliRunner().invoke(app, ["eta-eval", str(broken)])
    assert result.exit_code == 2 and "cannot read" in result.stderr


def test_history_with_a_correction_survives_save_and_load(tmp_path: Path) -> None:
    replay = Replay()
    replay.run([parse_trip(r) for r in bus_line(FIRST_FIT_TRIPS + 2)])
    history = replay.history
    assert history.correction is not None
    history.save(tmp_path / "h.json")
    loaded = History.load(tmp_path / "h.json")
    assert loaded.correction is not None
    results = []
    for h in (history, loaded):
        est = EtaEstimator(h)
        plan = est.plan((52.0, 13.0 + 12.0 * KM_LON))
        motion, progress = Motion(), Progress()
        est.observe_at(motion, T0, 52.0, 13.0)
        results.append(est.estimate_at(plan, progress, motion, T0, 52.0, 13.0))
    assert results[0].raw is not None and results[0].raw == pytest.approx(results[1].raw)
    for a, b in ((results[0].eta, results[1].eta), (results[0].eta_high, results[1].eta_high)):
        assert abs((a - b).total_seconds()) < 0.1  # saved rounded, to the millisecond
