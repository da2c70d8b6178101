"""``bench.eta_blend``: the blend's step replayed from recorded candidates gives the run's
own figures, and follows a change to ``stacking``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.eta_blend import record, replay
from bench.eta_real import row
from shiptrack.eta import stacking
from shiptrack.eta.evaluate import CHECKPOINTS

from .test_eta_stacking import vessels


def test_the_replay_of_the_blend_gives_the_runs_own_figures(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trips = tmp_path / "trips.jsonl"
    trips.write_text("".join(json.dumps(t) + "\n" for t in vessels(30)))
    events = tmp_path / "events.jsonl.gz"
    report = record(trips, events, 1, 0)
    replayed = row("x", replay(events), 0.0)
    assert replayed == row("x", report, 0.0)  # every MAE, better-by and coverage
    assert all(replayed[str(k)]["shiptrack"] is not None for k in CHECKPOINTS)
    monkeypatch.setattr(stacking, "PRIOR", (0.0, 0.0, 0.0, 1.0, 0.0))  # a change to the stack
    monkeypatch.setattr(stacking, "MIN_RECORDS", 10**9)
    changed = row("x", replay(events), 0.0)
    assert any(changed[str(k)]["shiptrack"] != replayed[str(k)]["shiptrack"]
               for k in (25, 50, 75))
