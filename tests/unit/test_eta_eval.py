"""``shiptrack eta-eval``: the SPEC's output, checkpoints, baselines, learning only from the
past."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shiptrack.app.cli import app
from shiptrack.eta.evaluate import _first_at_or_after, evaluate
from shiptrack.eta.geo import M_PER_DEG
from shiptrack.eta.trips import Trip, TripError, parse_trip, read_trips

T0 = 1_772_438_400  # 2026-03-02T08:00:00Z
KM_LON = 1000.0 / (M_PER_DEG * math.cos(math.radians(52.0)))


def trip(trip_id: str, start: float, kmh: float, km: float = 100.0, every_min: float = 6.0,
         route: bool = True, **extra: Any) -> dict[str, Any]:
    """A straight drive east at a constant speed, a fix every ``every_min``."""
    minutes = km / kmh * 60
    n = round(minutes / every_min)
    points = [{"ts": start + i * every_min * 60, "lat": 52.0,
               "lon": 13.0 + kmh * i * every_min / 60 * KM_LON} for i in range(n + 1)]
    out: dict[str, Any] = {"trip_id": trip_id, "points": points, **extra}
    if route:
        out["route"] = {"type": "LineString",
                        "coordinates": [[13.0 + k * KM_LON, 52.0] for k in range(int(km) + 1)]}
    return out


def trips_of(*objs: dict[str, Any]) -> list[Trip]:
    return [parse_trip(o) for o in objs]


def mae(report: Any, model: str) -> list[float | None]:
    return [report.mae_min(model, k) for k in (0, 25, 50, 75)]


def test_baselines_on_hand_made_trips() -> None:
    # A: 100 km at 50 km/h (2 h); B departs after A arrived: 100 km at 100 km/h (1 h)
    report = evaluate(trips_of(trip("A", T0, 50.0), trip("B", T0 + 3 * 3600, 100.0,
                                                           every_min=3.0)))
    assert report.trips == 2
    # constant_speed: A at 60 km/h (nothing learned yet): -20, -15, -10, -5 minutes;
    # B at the fleet's mean trip speed learned from A (50 km/h): +60, +45, +30, +15
    assert report.errors["constant_speed"][0] == pytest.approx([-1200.0, 3600.0], abs=1.0)
    assert mae(report, "constant_speed") == pytest.approx([40.0, 30.0, 20.0, 10.0], abs=0.02)
    # avg_speed_so_far: exact once the trip has an average; at 0 it is constant_speed
    assert mae(report, "avg_speed_so_far") == pytest.approx([40.0, 0.0, 0.0, 0.0], abs=0.02)
    assert report.errors["avg_speed_so_far"][0] == report.errors["constant_speed"][0]


def test_nothing_is_learned_from_a_trip_still_under_way() -> None:
    # B departs an hour before A arrives: it knows nothing of A (60 km/h, the default)
    report = evaluate(trips_of(trip("A", T0, 50.0), trip("B", T0 + 3600, 100.0,
                                                           every_min=3.0)))
    assert report.errors["constant_speed"][0][1] == pytest.approx(100 / 60 * 3600 - 3600)


def test_a_training_share_is_learned_from_and_not_scored() -> None:
    trips = trips_of(*(trip(f"t{i}", T0 + i * 3 * 3600, 80.0) for i in range(4)))
    report = evaluate(trips, train_fraction=0.5)
    assert report.trips == 2
    assert all(len(report.errors["shiptrack"][k]) == 2 for k in (0, 25, 50, 75))


def test_the_model_learns_the_road_and_beats_both_baselines() -> None:
    trips = [trip(f"t{i}", T0 + i * 3 * 3600, 90.0 if i % 2 else 70.0, every_min=2.0)
             for i in range(12)]
    report = evaluate(trips_of(*trips), train_fraction=0.5)
    ours, constant = mae(report, "shiptrack"), mae(report, "constant_speed")
    assert all(a is not None and b is not None and a <= b
               for a, b in zip(ours, constant, strict=True))
    assert ours[0] is not None and constant[0] is not None and ours[0] < constant[0]


def test_checkpoints_are_the_first_fix_at_or_after_the_share() -> None:
    ts = [0.0, 10.0, 30.0, 49.0, 80.0, 100.0]
    assert [_first_at_or_after(ts, k / 100) for k in (0, 25, 50, 75)] == [0, 2, 4, 4]
    assert _first_at_or_after([0.0, 10.0, 100.0], 0.5) is None  # only the arrival is later


def test_input_forms_and_refusals() -> None:
    parsed = parse_trip({"trip_id": 7, "points": [
        {"ts": "2026-03-02T08:10:00Z", "lat": 1.0, "lon": 2.0},
        {"ts": 1_772_438_400_000, "lat": 1.0, "lon": 2.1},  # milliseconds, out of order
        {"ts": 1_772_438_400, "lat": 9.0, "lon": 9.0}]})  # a duplicate time: the first wins
    assert parsed.trip_id == "7"
    assert parsed.ts == [T0, T0 + 600.0]
    assert parsed.destination == (1.0, 2.0)
    two = [{"ts": T0, "lat": 1, "lon": 2}, {"ts": T0 + 9, "lat": 1, "lon": 3}]
    refused: list[dict[str, Any]] = [
        {"points": []},
        {"trip_id": "x", "points": two[:1]},
        {"trip_id": "x", "points": [{"ts": T0, "lat": 91, "lon": 2}, two[1]]},
        {"trip_id": "x", "points": [{"ts": "yesterday", "lat": 1, "lon": 2}, two[1]]},
        {"trip_id": "x", "points": two, "route": {"type": "Point"}},
    ]
    for bad in refused:
        with pytest.raises(TripError):
            parse_trip(bad)
    lines = ["", "not json", json.dumps(trip("ok", T0, 60.0))]
    found = list(read_trips(lines))
    assert isinstance(found[0], TripError) and "line 2" in str(found[0])
    assert isinstance(found[1], Trip)


def write(path: Path, objs: list[dict[str, Any]], extra: tuple[str, ...] = ()) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs) + "".join(extra))
    return path


def test_cli_json_is_exactly_the_spec_object(tmp_path: Path) -> None:
    path = write(tmp_path / "trips.jsonl", [
        trip("A", T0, 50.0), trip("B", T0 + 3 * 3600, 100.0, every_min=3.0, route=False),
        trip("C", T0 + 5 * 3600, 70.0, device_id="truck-1")])
    result = CliRunner().invoke(app, ["eta-eval", str(path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert list(out) == ["trips", "checkpoints", "models"]
    assert out["trips"] == 3 and out["checkpoints"] == [0, 25, 50, 75]
    assert list(out["models"]) == ["shiptrack", "constant_speed", "avg_speed_so_far"]
    assert list(out["models"]["shiptrack"]) == ["mae_min", "interval_coverage"]
    for model in ("constant_speed", "avg_speed_so_far"):
        assert list(out["models"][model]) == ["mae_min"]
    for figures in (*(m["mae_min"] for m in out["models"].values()),
                    out["models"]["shiptrack"]["interval_coverage"]):
        assert list(figures) == ["0", "25", "50", "75"]
        assert all(isinstance(v, float | int) for v in figures.values())
    assert all(0.0 <= v <= 1.0 for v in out["models"]["shiptrack"]["interval_coverage"].values())


def test_cli_table_skips_bad_lines_and_saves_the_history(tmp_path: Path) -> None:
    path = write(tmp_path / "trips.jsonl", [trip("A", T0, 50.0)], ("{\"trip_id\": 1}\n",))
    history = tmp_path / "history.json"
    result = CliRunner().invoke(app, ["eta-eval", str(path), "--save-history", str(history)])
    assert result.exit_code == 0, result.output
    assert "constant_speed" in result.stdout and "coverage" in result.stdout
    assert "skipped line 2" in result.stderr
    assert json.loads(history.read_text())["fleet"] == [100_000.0, 7200.0]


def test_cli_without_usable_trips_fails(tmp_path: Path) -> None:
    path = write(tmp_path / "trips.jsonl", [], ("[]\n",))
    result = CliRunner().invoke(app, ["eta-eval", str(path), "--json"])
    assert result.exit_code == 2
    assert result.stdout == ""
    missing = CliRunner().invoke(app, ["eta-eval", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2
