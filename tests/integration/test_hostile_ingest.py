"""Poison through the real broker into ingest and the real database (issue #10): every
poison message between good fixes of other devices, ingest restarted in between; a
failure inside tracking or ETA for one device; geometry built once by the API and only
loaded by ingest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shiptrack.config import Settings
from tests.helpers import publish, query, running_api, running_ingest, wait_for

AUTH = {"Authorization": "Bearer test-admin-token"}
T0 = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
HUGE = "1" + "0" * 400
DEEP = "[" * 1000 + "]" * 1000


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def good(n: int, lat: float = 10.0, lon: float = 10.0) -> bytes:
    return json.dumps({"ts": iso(T0 + timedelta(seconds=n)), "lat": lat, "lon": lon}).encode()


def stay(lat: float = 10.0, lon: float = 10.0) -> bytes:
    """Ten minutes at one place, in one message: long enough for any debounce."""
    return json.dumps([{"ts": iso(T0 + timedelta(seconds=60 * i)), "lat": lat, "lon": lon}
                       for i in range(11)]).encode()


FIX = f'{{"ts": "{iso(T0)}", "lat": 1.0, "lon": 2.0'
# (kind, payload, the dead letters it must leave: reason -> rows), kind: device/ot/scan
POISON: list[tuple[str, bytes, dict[str, int]]] = [
    ("device", (FIX + f', "lat": {HUGE}}}').encode(), {"out_of_range": 1}),
    ("device", f'{{"ts": {HUGE}, "lat": 1, "lon": 2}}'.encode(), {"bad_timestamp": 1}),
    ("device", b'{"ts": "\\u0000", "lat": 1, "lon": 2}', {"bad_timestamp": 1}),
    ("device", DEEP.encode(), {"too_deep": 1}),
    ("device", (FIX + ', "x": ' + DEEP + "}").encode(), {"too_deep": 1}),
    ("device", b'{"ts": 1, "lat": NaN, "lon": Infinity}', {"not_json": 1}),
    ("device", b'{"lat": 1e400}', {"not_json": 1}),
    ("device", b"\xff\xfe\x00garbage", {"not_json": 1}),
    ("device", json.dumps([1] * 10_000).encode(), {"not_object": 1}),
    ("device", json.dumps([{"lat": 100}] * 300).encode(), {"missing_field": 101}),
    ("ot", f'{{"_type": "location", "lat": 1, "lon": 2, "tst": {HUGE}}}'.encode(),
     {"bad_timestamp": 1}),
    ("ot", DEEP.encode(), {"too_deep": 1}),
    ("scan", f'{{"ts": {HUGE}, "shipment_ref": "R", "kind": "hub"}}'.encode(),
     {"bad_timestamp": 1}),
    ("scan", DEEP.encode(), {"too_deep": 1}),
    ("scan", b'{"ts": "2026-01-01T00:00:00Z", "shipment_ref": "R\\u0000", "kind": "hub"}',
     {"bad_value": 1}),
]
# stored, with the bad optional fields named in attrs._invalid
KEPT: list[tuple[bytes, list[str]]] = [
    ((FIX + ', "seq": 18446744073709551616}').encode(), ["seq"]),
    ((FIX + ', "accuracy": -1, "battery": 250}').encode(), ["accuracy", "battery"]),
    ((FIX + f', "sensors": {{"temperature_c": {HUGE}, "ok": 1}}}}').encode(),
     ["sensors.temperature_c"]),
    ((FIX + ', "note": "a\\u0000b"}').encode(), ["note"]),
]


def topic_of(settings: Settings, kind: str, name: str) -> str:
    prefix = settings.mqtt_topic_prefix
    return {"device": f"{prefix}shiptrack/v1/devices/{name}/position",
            "ot": f"{prefix}owntracks/u/{name}",
            "scan": f"{prefix}shiptrack/v1/scanners/{name}/scan"}[kind]


def dead_letters(settings: Settings, topic: str) -> dict[str, int]:
    rows = query(settings.database_url or "", "SELECT reason, count(*) FROM dead_letters"
                 " WHERE topic = %s GROUP BY reason", (topic,))
    return {str(r): int(n) for r, n in rows}


def positions(settings: Settings, device: str) -> int:
    return int(query(settings.database_url or "", "SELECT count(*) FROM positions"
                     " WHERE device_id = %s", (device,))[0][0])


def test_each_poison_between_good_fixes_with_restarts(settings: Settings) -> None:
    rounds = [POISON[i:i + 5] for i in range(0, len(POISON), 5)]
    n = 0
    for r, poisons in enumerate(rounds):  # ingest restarted between rounds, same session
        with running_ingest(settings):
            messages = []
            for i, (kind, payload, _) in enumerate(poisons):
                n += 1
                messages += [(topic_of(settings, "device", f"good-{r}-{i}-a"), good(n)),
                             (topic_of(settings, kind, f"poison-{r}-{i}"), payload),
                             (topic_of(settings, "device", f"good-{r}-{i}-b"), good(n))]
            publish(settings.mqtt_url or "", messages)
            for i, (kind, _, expected) in enumerate(poisons):
                good_b = f"good-{r}-{i}-b"
                poison_topic = topic_of(settings, kind, f"poison-{r}-{i}")
                wait_for(lambda: positions(settings, good_b) == 1)  # noqa: B023 (waited here)
                wait_for(lambda: dead_letters(settings, poison_topic) == expected)  # noqa: B023
                assert positions(settings, f"good-{r}-{i}-a") == 1
    # after one more restart nothing is redelivered: each poison stayed dead-lettered once
    with running_ingest(settings):
        publish(settings.mqtt_url or "", [(topic_of(settings, "device", "marker"), good(0))])
        wait_for(lambda: positions(settings, "marker") == 1)
    for r, poisons in enumerate(rounds):
        for i, (kind, _, expected) in enumerate(poisons):
            assert dead_letters(settings, topic_of(settings, kind, f"poison-{r}-{i}")) \
                == expected
    counts = query(settings.database_url or "", "SELECT reason, sum(count) FROM dead_letters"
                   " WHERE reason IN ('not_object', 'missing_field') GROUP BY reason")
    assert dict(counts) == {"not_object": 10_000, "missing_field": 300}


def test_bad_optional_fields_are_stored_named(settings: Settings) -> None:
    with running_ingest(settings):
        publish(settings.mqtt_url or "", [
            (topic_of(settings, "device", f"kept-{i}"), payload)
            for i, (payload, _) in enumerate(KEPT)])
        for i in range(len(KEPT)):
            wait_for(lambda: positions(settings, f"kept-{i}") == 1)  # noqa: B023 (waited here)
    for i, (_, invalid) in enumerate(KEPT):
        [(attrs, seq, accuracy)] = query(
            settings.database_url or "", "SELECT attrs, seq, accuracy FROM positions"
            " WHERE device_id = %s", (f"kept-{i}",))
        assert attrs["_invalid"] == invalid
        assert seq is None and accuracy is None
    assert dead_letters(settings, topic_of(settings, "device", "kept-0")) == {}


# -- a bug in tracking or ETA for one device ----------------------------------------------

@pytest.fixture
def http(settings: Settings) -> Iterator[httpx.Client]:
    with running_api(settings) as base, httpx.Client(base_url=base, headers=AUTH,
                                                     timeout=10) as client:
        yield client


def fence(http: httpx.Client, geometry: dict[str, Any], **props: Any) -> str:
    r = http.post("/api/v1/geofences", json={"type": "Feature", "geometry": geometry,
                                              "properties": {"name": "f", **props}})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def events(settings: Settings, device: str) -> list[str]:
    rows = query(settings.database_url or "", "SELECT type FROM events WHERE device_id = %s"
                 " AND type LIKE 'geofence.%%' ORDER BY seq", (device,))
    return [str(r[0]) for r in rows]


def test_a_tracking_or_eta_failure_costs_only_that_device(
        settings: Settings, http: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from ingest.eta_stage import EtaStage
    from ingest.tracking import Tracker

    fence(http, {"type": "Point", "coordinates": [10.0, 10.0]}, radius_m=500)
    track, eta = Tracker.process, EtaStage.process

    def boom(fixes: Any) -> None:
        if any(f.device_id == "boom" for f in fixes):
            raise ZeroDivisionError("a bug that only this device's data reaches")

    def tracking(self: Tracker, source: Any, fixes: Any, scans: Any, now: Any) -> Any:
        boom(fixes)
        return track(self, source, fixes, scans, now)

    def estimating(self: EtaStage, fixes: Any, *args: Any) -> Any:
        boom(fixes)
        return eta(self, fixes, *args)

    monkeypatch.setattr(Tracker, "process", tracking)
    monkeypatch.setattr(EtaStage, "process", estimating)
    slow = settings.model_copy(update={"ingest_batch_ms": 300})  # one batch for both
    with running_ingest(slow):
        publish(settings.mqtt_url or "", [(topic_of(settings, "device", d), stay())
                                          for d in ("boom", "ok")])
        wait_for(lambda: events(settings, "ok") == ["geofence.enter", "geofence.dwell"])
    assert positions(settings, "boom") == 11 and positions(settings, "ok") == 11
    assert events(settings, "boom") == []


# -- geometry: a cost budget, built once by the API -----------------------------------------

LONG = {"type": "LineString", "coordinates": [[0, 0], [40, 0], [80, 0], [120, 0], [160, 0]]}


def test_costly_corridors_and_routes_are_422(http: httpx.Client) -> None:
    r = http.post("/api/v1/geofences", json={"type": "Feature", "geometry": LONG,
                                              "properties": {"name": "x", "buffer_m": 100_000}})
    assert r.status_code == 422
    assert "cost too much" in r.json()["error"]["message"]
    world = {"type": "LineString", "coordinates": [[-179, 0], [-60, 0], [60, 0], [179, 0]]}
    r = http.post("/api/v1/geofences", json={"type": "Feature", "geometry": world,
                                              "properties": {"name": "x", "buffer_m": 10}})
    assert r.status_code == 422 and "km long" in r.json()["error"]["message"]
    ship = {"reference": "R1", "device_id": "d", "origin": {"lat": 0, "lon": 0},
            "destination": {"lat": 0, "lon": 160}, "route": LONG, "route_corridor_m": 100_000}
    r = http.post("/api/v1/shipments", json=ship)
    assert r.status_code == 422 and "cost too much" in r.json()["error"]["message"]
    r = http.post("/api/v1/shipments", json={**ship, "route_corridor_m": 1000})
    assert r.status_code == 201, r.text
    r = http.patch(f"/api/v1/shipments/{r.json()['id']}", json={"route_corridor_m": 100_000})
    assert r.status_code == 422 and "cost too much" in r.json()["error"]["message"]


def test_ingest_loads_corridors_the_api_built(settings: Settings, http: httpx.Client,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from shiptrack import geodesy

    road = {"type": "LineString", "coordinates": [[10.0, 10.0], [10.5, 10.0]]}
    fid = fence(http, road, buffer_m=2000)
    r = http.post("/api/v1/shipments", json={
        "reference": "R2", "device_id": "truck", "origin": {"lat": 10.0, "lon": 10.0},
        "destination": {"lat": 10.0, "lon": 10.5}, "route": road})
    assert r.status_code == 201, r.text
    db = settings.database_url or ""
    assert query(db, "SELECT shape_wkb IS NOT NULL FROM geofences")[0][0] is True
    assert query(db, "SELECT route_corridor_wkb IS NOT NULL FROM shipments")[0][0] is True

    def no_buffering(*args: Any) -> Any:
        raise AssertionError("ingest buffered a corridor")

    monkeypatch.setattr(geodesy, "corridor_polygon", no_buffering)
    with running_ingest(settings):
        publish(settings.mqtt_url or "", [(topic_of(settings, "device", "truck"),
                                           stay(10.0, 10.2))])
        wait_for(lambda: "geofence.enter" in events(settings, "truck"))
    # a write of the geometry that brings no new shape forgets the stale one
    query(db, "UPDATE geofences SET properties = properties || '{\"buffer_m\": 10}'"
              " WHERE id = %s RETURNING 1", (fid,))
    assert query(db, "SELECT shape_wkb IS NULL FROM geofences")[0][0] is True


def test_an_unexpected_error_on_one_message_dead_letters_only_it(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import ingest.pipeline as pipeline
    from shiptrack.decode import decode_position as decode

    def crashing(device_id: str, *args: Any) -> Any:
        if device_id == "crash":
            raise RecursionError("a bug no test foresaw")
        return decode(device_id, *args)

    monkeypatch.setattr(pipeline, "decode_position", crashing)
    slow = settings.model_copy(update={"ingest_batch_ms": 300})  # one batch for all
    with running_ingest(slow):
        publish(settings.mqtt_url or "", [(topic_of(settings, "device", d), good(1))
                                          for d in ("before", "crash", "after")])
        wait_for(lambda: positions(settings, "after") == 1)
        wait_for(lambda: dead_letters(settings, topic_of(settings, "device", "crash"))
                 == {"internal_error": 1})
    assert positions(settings, "before") == 1
    [(detail,)] = query(settings.database_url or "", "SELECT detail FROM dead_letters")
    assert detail == "RecursionError: a bug no test foresaw"


def test_renaming_a_corridor_keeps_its_stored_shape(settings: Settings,
                                                    http: httpx.Client) -> None:
    road = {"type": "LineString", "coordinates": [[10.0, 10.0], [10.5, 10.0]]}
    fid = fence(http, road, buffer_m=2000)
    r = http.put(f"/api/v1/geofences/{fid}", json={
        "type": "Feature", "geometry": road, "properties": {"name": "renamed", "buffer_m": 2000}})
    assert r.status_code == 200, r.text
    db = settings.database_url or ""
    assert query(db, "SELECT shape_wkb IS NOT NULL FROM geofences")[0][0] is True
    query(db, "UPDATE geofences SET properties = properties || '{\"dwell_s\": 5}'"
              " WHERE id = %s RETURNING 1", (fid,))
    assert query(db, "SELECT shape_wkb IS NOT NULL FROM geofences")[0][0] is True
