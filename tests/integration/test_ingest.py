"""Ingest against the real broker and database: what is stored, what is rejected."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY

from shiptrack.config import Settings
from tests.helpers import publish, query, running_ingest, wait_for

NOW = datetime.now(UTC).replace(microsecond=0)


def iso(dt: datetime) -> str:
    return dt.isoformat().replace("+00:00", "Z")


def topic(settings: Settings, device: str) -> str:
    return f"{settings.mqtt_topic_prefix}shiptrack/v1/devices/{device}/position"


def count(settings: Settings, sql: str) -> int:
    assert settings.database_url
    return int(query(settings.database_url, sql)[0][0])


def test_single_and_batch_payloads_are_stored_with_last_position(settings: Settings) -> None:
    t0 = NOW - timedelta(minutes=10)
    single = {"ts": iso(t0), "lat": 52.5, "lon": 13.4, "speed": 10.0, "seq": 1,
              "sensors": {"temperature_c": 4.5}, "fw": "2.1"}
    batch = [{"ts": iso(t0 + timedelta(seconds=s)), "lat": 52.5 + s * 1e-4, "lon": 13.4}
             for s in (30, 10, 20)]
    with running_ingest(settings):
        publish(settings.mqtt_url or "", [
            (topic(settings, "truck-1"), json.dumps(single).encode()),
            (topic(settings, "truck-1"), json.dumps(batch).encode()),
        ])
        wait_for(lambda: count(settings, "SELECT count(*) FROM positions") == 4)
    assert settings.database_url
    rows = query(settings.database_url,
                 "SELECT ts, lat, speed, seq, sensors, attrs FROM positions ORDER BY ts")
    assert [r[0] for r in rows] == [t0 + timedelta(seconds=s) for s in (0, 10, 20, 30)]
    assert rows[0][2:] == (10.0, 1, {"temperature_c": 4.5}, {"fw": "2.1"})
    [device] = query(settings.database_url, "SELECT device_id, last_ts, lat FROM devices")
    assert device == ("truck-1", t0 + timedelta(seconds=30), 52.5 + 30e-4)


def test_duplicates_stored_once_and_old_fixes_do_not_move_live(settings: Settings) -> None:
    t0 = NOW - timedelta(minutes=5)
    newest = {"ts": iso(t0 + timedelta(seconds=60)), "lat": 10.0, "lon": 10.0}
    older = {"ts": iso(t0), "lat": 10.001, "lon": 10.0}
    with running_ingest(settings):
        publish(settings.mqtt_url or "", [(topic(settings, "d1"), json.dumps(newest).encode())])
        wait_for(lambda: count(settings, "SELECT count(*) FROM positions") == 1)
        publish(settings.mqtt_url or "", [
            (topic(settings, "d1"), json.dumps(older).encode()),
            (topic(settings, "d1"), json.dumps(newest).encode()),
            (topic(settings, "d1"), json.dumps([older, older]).encode()),
        ])
        wait_for(lambda: count(settings, "SELECT count(*) FROM positions") == 2)
        # a sentinel published last proves everything before it was handled
        sentinel = {"ts": iso(t0 + timedelta(seconds=61)), "lat": 10.0, "lon": 10.0}
        publish(settings.mqtt_url or "", [(topic(settings, "d2"), json.dumps(sentinel).encode())])
        wait_for(lambda: count(settings, "SELECT count(*) FROM positions") == 3)
    assert settings.database_url
    [(last_ts, lat)] = query(settings.database_url,
                             "SELECT last_ts, lat FROM devices WHERE device_id = 'd1'")
    assert (last_ts, lat) == (t0 + timedelta(seconds=60), 10.0)


def rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("shiptrack_ingest_rejected_total", {"reason": reason}) or 0.0


def test_bad_input_is_dead_lettered_and_the_rest_lands(settings: Settings) -> None:
    before = {r: rejected(r) for r in ("not_json", "ts_in_future", "bad_device_id")}
    good = {"ts": iso(NOW - timedelta(seconds=5)), "lat": 1.0, "lon": 2.0}
    future = {"ts": iso(NOW + timedelta(hours=1)), "lat": 1.0, "lon": 2.0}
    prefix = settings.mqtt_topic_prefix
    with running_ingest(settings):
        publish(settings.mqtt_url or "", [
            (topic(settings, "d1"), b"{not json"),
            (topic(settings, "d1"), json.dumps([good, future, {"lat": 1}]).encode()),
            (f"{prefix}shiptrack/v1/devices/bad id!/position", json.dumps(good).encode()),
            (topic(settings, "d1"), b'{"ts": "2026-01-01T00:00:00Z", "lat": NaN, "lon": 1}'),
        ])
        wait_for(lambda: count(settings, "SELECT count(*) FROM dead_letters") == 5)
    assert settings.database_url
    reasons = sorted(r[0] for r in query(settings.database_url,
                                         "SELECT reason FROM dead_letters"))
    assert reasons == sorted(["not_json", "ts_in_future", "missing_field", "bad_device_id",
                              "not_json"])
    assert count(settings, "SELECT count(*) FROM positions") == 1
    [(topic_, payload)] = query(settings.database_url,
                                "SELECT topic, payload FROM dead_letters WHERE reason ="
                                " 'ts_in_future'")
    assert topic_ == topic(settings, "d1") and json.loads(payload)["lat"] == 1.0
    # counted in the metrics by reason, too
    assert rejected("not_json") - before["not_json"] == 2
    assert rejected("ts_in_future") - before["ts_in_future"] == 1
    assert rejected("bad_device_id") - before["bad_device_id"] == 1


def test_owntracks_over_mqtt(settings: Settings) -> None:
    msg = {"_type": "location", "lat": 48.85, "lon": 2.35, "tst": int(NOW.timestamp()) - 30,
           "vel": 72, "batt": 50, "acc": 5, "tid": "jd"}
    prefix = settings.mqtt_topic_prefix
    with running_ingest(settings):
        publish(settings.mqtt_url or "", [
            (f"{prefix}owntracks/jane/phone", json.dumps({"_type": "lwt", "tst": 1}).encode()),
            (f"{prefix}owntracks/jane/phone", json.dumps(msg).encode()),
        ])
        wait_for(lambda: count(settings, "SELECT count(*) FROM positions") == 1)
    assert settings.database_url
    [row] = query(settings.database_url,
                  "SELECT device_id, speed, battery, attrs FROM positions")
    assert row == ("owntracks.jane.phone", 20.0, 0.5, {"tid": "jd"})
    assert count(settings, "SELECT count(*) FROM dead_letters") == 0


def test_outlier_is_stored_flagged_and_not_live(settings: Settings) -> None:
    t0 = NOW - timedelta(minutes=2)
    fixes = [{"ts": iso(t0), "lat": 50.0, "lon": 8.0},
             {"ts": iso(t0 + timedelta(seconds=10)), "lat": 51.0, "lon": 8.0},
             {"ts": iso(t0 + timedelta(seconds=20)), "lat": 50.0005, "lon": 8.0}]
    with running_ingest(settings):
        for f in fixes:
            publish(settings.mqtt_url or "", [(topic(settings, "d"), json.dumps(f).encode())])
        wait_for(lambda: count(settings, "SELECT count(*) FROM positions") == 3)
    assert settings.database_url
    flags = query(settings.database_url, "SELECT outlier FROM positions ORDER BY ts")
    assert [f[0] for f in flags] == [False, True, False]
    [(lat,)] = query(settings.database_url, "SELECT lat FROM devices")
    assert lat == 50.0005
