from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.outliers import LastFix, advance
from shiptrack.eta.geo import haversine_m
from shiptrack.fix import Fix

T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)


def fix(sec: int, lat: float, lon: float, device: str = "d") -> Fix:
    return Fix(device_id=device, ts=T0 + timedelta(seconds=sec), lat=lat, lon=lon)


def test_haversine_one_degree_of_latitude() -> None:
    assert abs(haversine_m(0, 0, 1, 0) - 111_195) < 10


def test_live_moves_forward_only_and_in_ts_order() -> None:
    last = {"d": LastFix(T0 + timedelta(seconds=10), 52.0, 13.0)}
    batch = [fix(12, 52.0002, 13.0), fix(5, 51.9999, 13.0), fix(11, 52.0001, 13.0)]
    live, moved = advance(batch, last, 300 / 3.6)
    assert [f.ts.second for f in live] == [11, 12]
    assert moved["d"].ts == T0 + timedelta(seconds=12)
    assert not any(f.outlier for f in batch)


def test_impossible_jump_is_flagged_and_does_not_move_live() -> None:
    batch = [fix(0, 52.0, 13.0), fix(10, 53.0, 13.0), fix(20, 52.001, 13.0)]
    live, moved = advance(batch, {}, 300 / 3.6)  # 111 km in 10 s
    assert [f.outlier for f in batch] == [False, True, False]
    assert [f.ts.second for f in live] == [0, 20]
    assert moved["d"].lat == 52.001


def test_devices_are_independent() -> None:
    live, moved = advance([fix(0, 1, 1, "a"), fix(0, 50, 50, "b")], {}, 10.0)
    assert len(live) == 2 and set(moved) == {"a", "b"}
