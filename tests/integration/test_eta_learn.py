"""``shiptrack eta-learn``: the ETA history learned from stored positions and delivered
shipments, against the real database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from shiptrack.app.cli import app
from shiptrack.eta.geo import M_PER_DEG
from shiptrack.eta.history import History
from shiptrack.eta.learn import learn
from shiptrack.eta.profile import cell_of, hour_of_week
from tests.helpers import query

START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # a Monday, 08:00 UTC
SPEED = 20.0  # m/s, due north
EVERY = 30  # s between fixes
FIXES = 300
PICKED, DELIVERED = 50, 250  # fix indexes of the shipment's milestones


def _at(i: int) -> datetime:
    return START + timedelta(seconds=i * EVERY)


@pytest.fixture
def stored(db_url: str) -> str:
    """One device along a meridian at 20 m/s (and one outlier far away), with a delivered
    shipment over fixes 50..250."""
    query(db_url, "SELECT shiptrack_ensure_positions_partitions(ARRAY[%s, %s]::timestamptz[])",
          (START, _at(FIXES)))
    step_deg = SPEED * EVERY / M_PER_DEG
    query(db_url, "INSERT INTO positions (device_id, ts, lat, lon, speed, outlier)"
                  " SELECT 'truck-1', %s + make_interval(secs => i * %s), 50 + i * %s, 10.0,"
                  "        %s, false FROM generate_series(0, %s) AS i RETURNING 1",
          (START, EVERY, step_deg, SPEED, FIXES - 1))
    query(db_url, "INSERT INTO positions (device_id, ts, lat, lon, outlier)"
                  " VALUES ('truck-1', %s, 0.5, 10.0, true) RETURNING 1",
          (_at(100) + timedelta(seconds=10),))
    place = json.dumps({"lat": 50.0, "lon": 10.0, "radius_m": 500})
    query(db_url, "INSERT INTO shipments (id, reference, device_id, tracking_token, origin,"
                  " destination, status, delivered_at)"
                  " VALUES ('shp_1', 'ref-1', 'truck-1', 'tok-1', %s, %s, 'delivered', %s)"
                  " RETURNING 1", (place, place, _at(DELIVERED)))
    query(db_url, "INSERT INTO shipment_milestones (shipment_id, kind, ts, source)"
                  " VALUES ('shp_1', 'picked_up', %s, 'manual'),"
                  "        ('shp_1', 'delivered', %s, 'manual') RETURNING 1",
          (_at(PICKED), _at(DELIVERED)))
    return db_url


def test_learns_profile_and_trip_from_stored_positions(stored: str) -> None:
    with psycopg.connect(stored) as conn:
        history, summary = learn(conn)
    assert (summary.devices, summary.positions, summary.trips) == (1, FIXES, 1)
    profile = history.profile
    metres, seconds = profile.total[0], profile.total[1]
    assert metres == pytest.approx(SPEED * EVERY * (FIXES - 1), rel=0.01)  # outlier ignored
    assert seconds == pytest.approx(EVERY * (FIXES - 1), rel=0.01)
    assert cell_of(0.5, 10.0) not in profile.cells
    # the cell and hour of the step from fix 9 to fix 10 moved at 20 m/s
    mid_lat = 50 + 9.5 * SPEED * EVERY / M_PER_DEG
    mid_ts = (_at(9) + timedelta(seconds=EVERY / 2)).timestamp()
    m, s = profile.hours[(cell_of(mid_lat, 10.0), hour_of_week(mid_ts))]
    assert m / s == pytest.approx(SPEED, rel=0.01)
    for m, s in profile.hours.values():
        assert m / s == pytest.approx(SPEED, rel=0.01)
    # the delivered shipment is a finished trip: its duration, distance, ETA errors
    assert history.fleet_s == pytest.approx(EVERY * (DELIVERED - PICKED), rel=0.01)
    assert history.fleet_kmh == pytest.approx(SPEED * 3.6, rel=0.01)
    assert len(history.calibration) > 0
    # --since: only what is newer
    with psycopg.connect(stored) as conn:
        later, summary = learn(conn, _at(DELIVERED + 1))
    assert (summary.positions, summary.trips) == (FIXES - DELIVERED - 1, 0)
    assert later.fleet_s == 0.0


def test_cli_writes_a_loadable_history(stored: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "h.json"
    result = CliRunner().invoke(app, ["eta-learn", "--database-url", stored, "--out", str(out)])
    assert result.exit_code == 0, result.output
    loaded = History.load(out)
    assert loaded.profile.total[0] == pytest.approx(SPEED * EVERY * (FIXES - 1), rel=0.01)
    assert loaded.fleet_kmh == pytest.approx(SPEED * 3.6, rel=0.01)
    # default: SHIPTRACK_ETA_HISTORY, else <data dir>/eta-history.json
    monkeypatch.setenv("SHIPTRACK_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(app, ["eta-learn", "--database-url", stored,
                                      "--since", "2026-11-02T09:00:00"])
    assert result.exit_code == 0, result.output
    assert History.load(tmp_path / "data" / "eta-history.json").fleet_s == 0.0
    monkeypatch.setenv("SHIPTRACK_ETA_HISTORY", str(tmp_path / "named.json"))
    result = CliRunner().invoke(app, ["eta-learn", "--database-url", stored])
    assert result.exit_code == 0, result.output
    assert History.load(tmp_path / "named.json").fleet_s > 0.0


def test_ingest_takes_a_newer_history_without_restart(stored: str, tmp_path: Path) -> None:
    """EtaStage reloads SHIPTRACK_ETA_HISTORY when eta-learn rewrote it (at most every
    RELOAD_EVERY_S), and keeps the history in use when the file is unreadable."""
    import os
    import time

    from ingest.eta_stage import RELOAD_EVERY_S, EtaStage
    from shiptrack.config import Settings

    path = tmp_path / "eta-history.json"
    History().save(path)
    stage = EtaStage.from_settings(Settings(eta_history=str(path)), lambda area: None)
    assert stage.estimator.history.fleet_s == 0.0
    result = CliRunner().invoke(app, ["eta-learn", "--database-url", stored, "--out", str(path)])
    assert result.exit_code == 0, result.output
    now = time.monotonic()
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000_000))  # a newer mtime
    assert not stage.reload_history(now)  # looked less than RELOAD_EVERY_S ago
    assert stage.reload_history(now + RELOAD_EVERY_S + 1)
    assert stage.estimator.history.fleet_s > 0.0
    assert not stage.reload_history(now + 2 * RELOAD_EVERY_S + 2)  # unchanged since
    path.write_text("{}", encoding="utf-8")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2_000_000_000))
    assert not stage.reload_history(now + 3 * RELOAD_EVERY_S + 3)
    assert stage.estimator.history.fleet_s > 0.0
