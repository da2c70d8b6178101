"""``shiptrack eta-convert``: the simulator's trips and truth files, and GPX, to trips."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shiptrack.app.cli import app
from shiptrack.eta.convert import ConvertError, from_gpx, from_sim
from simulator.cities import CITIES
from simulator.fleet import Fleet, FleetConfig
from simulator.tracker import TrackerConfig
from simulator.truth import TruthFiles

GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
  <rte><rtept lat="52.0" lon="13.0"/><rtept lat="52.0" lon="13.5"/></rte>
  <trk><name>morning</name><trkseg>
    <trkpt lat="52.0" lon="13.0"><time>2026-03-02T08:00:00Z</time></trkpt>
    <trkpt lat="52.0" lon="13.2"><time>2026-03-02T08:15:00Z</time></trkpt>
    <trkpt lat="52.0" lon="13.3"></trkpt>
  </trkseg><trkseg>
    <trkpt lat="52.0" lon="13.5"><time>2026-03-02T08:40:00Z</time></trkpt>
  </trkseg></trk>
  <trk><trkseg>
    <trkpt lat="52.0" lon="13.5"><time>2026-03-02T12:00:00</time></trkpt>
    <trkpt lat="52.0" lon="13.0"><time>2026-03-02T12:45:00</time></trkpt>
  </trkseg></trk>
</gpx>
"""


def test_gpx_tracks_become_trips_with_the_file_route(tmp_path: Path) -> None:
    path = tmp_path / "van.gpx"
    path.write_text(GPX)
    first, second = from_gpx(path)
    assert (first.trip_id, second.trip_id) == ("van-1", "van-2")
    start = datetime(2026, 3, 2, 8, tzinfo=UTC).timestamp()
    assert first.ts == [start, start + 900, start + 2400]  # the untimed point is left out
    assert first.destination == (52.0, 13.5)
    assert second.ts[0] == start + 4 * 3600  # no offset in the file: UTC
    assert first.route is not None and first.route.end == (52.0, 13.5)


def test_gpx_without_timed_tracks_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.gpx"
    path.write_text(GPX.split("<trk>")[0] + "</gpx>\n")
    with pytest.raises(ConvertError, match="no track"):
        from_gpx(path)
    broken = tmp_path / "broken.gpx"
    broken.write_text("<gpx><trk>")
    with pytest.raises(ConvertError):
        from_gpx(broken)


def simulated(tmp_path: Path) -> tuple[Path, Path]:
    """A short simulated run's ``--truth`` and ``--trips`` files."""
    config = FleetConfig(tracker=TrackerConfig(interval_s=120.0, adaptive=True),
                         start_at_hub=True, trips=1, max_leg_km=200.0)
    fleet = Fleet(2, seed=3, hubs=CITIES, config=config)
    truth, trips = tmp_path / "truth.jsonl", tmp_path / "trips.jsonl"
    files = TruthFiles(truth, trips)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    for k in range(8 * 30):
        fleet.advance(start + timedelta(seconds=k * 120.0))
        files.write(fleet.truth.drain())
    files.close()
    return truth, trips


def test_simulator_trips_get_their_device_from_the_truth_log(tmp_path: Path) -> None:
    truth, trips = simulated(tmp_path)
    lines = trips.read_text().splitlines() + truth.read_text().splitlines()
    converted = list(from_sim(lines))
    assert len(converted) == 2
    assert {t.device_id for t in converted} == {"sim-0001", "sim-0002"}
    assert all(t.route is not None and len(t.ts) > 10 for t in converted)
    alone = list(from_sim(trips.read_text().splitlines()))
    assert [t.device_id for t in alone] == [t.device_id for t in converted]
    # trips files from before the simulator wrote device_id: the truth log supplies it
    bare = [json.dumps({k: v for k, v in json.loads(line).items() if k != "device_id"})
            for line in trips.read_text().splitlines()]
    assert [t.device_id for t in from_sim(bare)] == [None, None]
    joined = list(from_sim(bare + truth.read_text().splitlines()))
    assert [t.device_id for t in joined] == [t.device_id for t in converted]
    with pytest.raises(ConvertError, match="--trips"):
        list(from_sim(truth.read_text().splitlines()))


def test_cli_converts_to_trips_that_eta_eval_reads(tmp_path: Path) -> None:
    truth, trips = simulated(tmp_path)
    out = tmp_path / "eval.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["eta-convert", "--from", "sim", str(trips), str(truth),
                                 "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [list(r) for r in rows] == [["trip_id", "device_id", "points", "route"]] * 2
    gpx = tmp_path / "van.gpx"
    gpx.write_text(GPX)
    result = runner.invoke(app, ["eta-convert", "--from", "gpx", str(gpx)])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["trip_id"] for line in result.stdout.splitlines()] == [
        "van-1", "van-2"]
    evaluated = runner.invoke(app, ["eta-eval", str(out), "--json"])
    assert evaluated.exit_code == 0 and json.loads(evaluated.stdout)["trips"] == 2
    missing = runner.invoke(app, ["eta-convert", "--from", "gpx", str(tmp_path / "x.gpx")])
    assert missing.exit_code == 2
