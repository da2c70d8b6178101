"""The ETA stage is pure while it processes a batch: the history file is looked at only by
``reload_history``, which the pipeline calls between batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import ingest.eta_stage as module
from ingest.eta_stage import RELOAD_EVERY_S, EtaStage
from ingest.tracking_model import Area, ShipmentTrack
from shiptrack.eta.history import History
from shiptrack.eta.model import EtaEstimator
from shiptrack.fix import Fix

T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)


def test_process_reads_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stage = EtaStage(EtaEstimator(), history_path=str(tmp_path / "history.json"))

    def no_io(*args: Any) -> Any:
        raise AssertionError("a file was looked at")

    stage._history_checked -= RELOAD_EVERY_S + 1  # due for a look
    monkeypatch.setattr(module, "_mtime", no_io)
    monkeypatch.setattr(History, "load", no_io)
    ship = ShipmentTrack(id="shp_1", reference="R1", device_id="d1", status="in_transit",
                         origin=None, destination=Area(key="shp_1:destination", lat=52.0,
                                                       lon=13.5, radius_m=300))
    fixes = [Fix(device_id="d1", ts=T0 + timedelta(seconds=30 * i), lat=52.0,
                 lon=13.0 + 0.001 * i, speed=10.0) for i in range(5)]
    out = stage.process(fixes, {"d1": [ship]}, anchor=lambda a: (a.lat, a.lon))
    assert [r.shipment_id for r in out.rows] == ["shp_1"]
    with pytest.raises(AssertionError, match="a file was looked at"):
        stage.reload_history()
