"""The ETA on the simulator's trucks: it converges on the actual arrival as a trip goes
on, and beats both baselines of ``shiptrack eta-eval`` (a small, fast version of the
documented benchmark, docs/ETA.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.eta_trips import generate
from shiptrack.app.cli import app
from shiptrack.eta.evaluate import CHECKPOINTS, Replay
from shiptrack.eta.model import Progress
from shiptrack.eta.trips import Trip, read_trips


@pytest.fixture(scope="module")
def trips_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("eta") / "trips.jsonl"
    assert generate(path, devices=5, days=4.0, interval_s=60.0, seed=11, max_leg_km=700.0) > 20
    return path


def load(path: Path) -> list[Trip]:
    with path.open() as f:
        return [t for t in read_trips(f) if isinstance(t, Trip)]


def test_a_simulated_trip_eta_converges_on_the_arrival(trips_file: Path) -> None:
    trips = sorted(load(trips_file), key=lambda t: t.start)
    # the longest trip of the second half: learned from everything that arrived before it
    last = max(trips[len(trips) // 2:], key=lambda t: t.end - t.start)
    replay = Replay()
    replay.run([t for t in trips if t.end < last.start])
    replay.learn_all()
    estimator, motion = replay.estimator, replay._motion(last)
    plan, progress = estimator.plan(last.destination, last.route), Progress()
    errors: dict[int, float] = {}
    inside: dict[int, bool] = {}
    widths: dict[int, float] = {}
    shares = (0, 25, 50, 75, 90)
    duration = last.end - last.start
    for t, lat, lon in zip(last.ts[:-1], last.lats, last.lons, strict=False):
        estimator.observe_at(motion, t, lat, lon)
        result = estimator.estimate_at(plan, progress, motion, t, lat, lon)
        for share in shares:
            if share not in errors and t >= last.start + share / 100 * duration:
                errors[share] = (result.eta.timestamp() - last.end) / 60
                inside[share] = result.eta_low.timestamp() <= last.end \
                    <= result.eta_high.timestamp()
                widths[share] = (result.eta_high - result.eta_low).total_seconds() / 60
    print(f"{last.trip_id}: {duration / 3600:.1f} h, errors {errors}, widths {widths} (min)")
    assert abs(errors[90]) < 15, errors
    assert abs(errors[75]) < 30, errors
    assert inside[90], (errors, inside, widths)


def test_eta_eval_beats_both_baselines_on_simulated_trips(trips_file: Path) -> None:
    result = CliRunner().invoke(app, ["eta-eval", str(trips_file), "--json",
                                      "--train-fraction", "0.3"])
    assert result.exit_code == 0, result.output
    models = json.loads(result.stdout)["models"]
    for k in map(str, CHECKPOINTS):
        ours = models["shiptrack"]["mae_min"][k]
        assert ours < models["constant_speed"]["mae_min"][k], (k, models)
        assert ours < models["avg_speed_so_far"]["mae_min"][k], (k, models)
