"""``bench.eta_blend``: the blend's step replayed from recorded candidates gives the run's
own figures, and follows a change to ``stacking``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.eta_blend import record, replay
from shiptrack.eta import stacking
from shiptrack.eta.evaluate import CHECKPOINTS

from .test_eta_stacking import vessels


def test_the_replay_of_the_blend_gives_the_runs_own_figures(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trips = tmp_path / "trips.jsonl"
    trips.write_text("".join(json.dumps(t) + "\n" for t in vessels(30)))
    events = tmp_path / "events.jsonl.gz"
    report = record(trips, events, 1, 0)
    replayed = replay(events)
    assert set(replayed) == set(CHECKPOINTS)
    for k in CHECKPOINTS:
        assert replayed[k]["mae_min"] == report.mae_min("shiptrack", k)
        assert replayed[k]["coverage"] == report.coverage(k)
        assert replayed[k]["baseline_min"] == min(
            v for m in ("constant_speed", "avg_speed_so_far")
            if (v := report.mae_min(m, k)) is not None)
    monkeypatch.setattr(stacking, "PRIOR", (0.0, 0.0, 0.0, 1.0))  # a change to the stack
    monkeypatch.setattr(stacking, "MIN_RECORDS", 10**9)
    changed = replay(events)
    assert any(changed[k]["mae_min"] != replayed[k]["mae_min"] for k in (25, 50, 75))
