"""Tracking end to end: fixes and scans over MQTT through ingest into events, milestones and
exceptions in the real database, published on the live events topic."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest

from shiptrack.config import Settings
from tests.helpers import (
    ingest_process,
    publish,
    publish_until,
    query,
    running_api,
    running_ingest,
    wait_for,
)
from tests.integration.test_tracking_api import AUTH, LiveEvents

T0 = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)  # old: never "live"
STEP = 0.005  # degrees of longitude per fix: ~343 m at 52 N


def at(sec: float) -> datetime:
    return T0 + timedelta(seconds=sec)


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def point(sec: float, lon: float, lat: float = 52.0, **extra: Any) -> dict[str, Any]:
    return {"ts": iso(at(sec)), "lat": lat, "lon": lon, **extra}


def trip() -> list[dict[str, Any]]:
    """10 min at the origin, 100 fixes east at 30 s (13.0 -> 13.5), 10 min at the end."""
    fixes = [point(30 * i, 13.0) for i in range(20)]
    fixes += [point(600 + 30 * (i - 1), 13.0 + STEP * i) for i in range(1, 101)]
    fixes += [point(3600 + 30 * i, 13.5) for i in range(20)]
    return fixes


# what the trip makes: (type, seconds after T0, fence name / milestone kind)
ETA_EVENTS = ("shipment.eta_changed", "shipment.at_risk", "shipment.at_risk_cleared")
EXPECTED = [
    ("geofence.enter", 0, "origin hub"), ("geofence.dwell", 300, "origin hub"),
    ("geofence.exit", 600, "origin hub"), ("shipment.milestone", 600, "picked_up"),
    ("shipment.milestone", 690, "in_transit"), ("geofence.enter", 840, "road"),
    ("geofence.dwell", 1140, "road"), ("shipment.milestone", 2670, "out_for_delivery"),
    ("geofence.exit", 3330, "road"),
    ("geofence.enter", 3570, "destination yard"), ("shipment.milestone", 3570, "delivered"),
    ("geofence.dwell", 3870, "destination yard"),
]


def topic(settings: Settings, device: str) -> str:
    return f"{settings.mqtt_topic_prefix}shiptrack/v1/devices/{device}/position"


def scan_topic(settings: Settings, scanner: str) -> str:
    return f"{settings.mqtt_topic_prefix}shiptrack/v1/scanners/{scanner}/scan"


def fast(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"tracking_reload_s": 0.2, "tracking_sweep_s": 0.2,
                                       **changes})


@pytest.fixture
def http(settings: Settings) -> Iterator[httpx.Client]:
    with running_api(settings) as base, httpx.Client(base_url=base, headers=AUTH,
                                                     timeout=10) as client:
        yield client


def setup_world(http: httpx.Client, devices: list[str]) -> dict[str, str]:
    """Origin hub (circle), a road corridor, a destination yard (polygon); one shipment per
    device from the hub to a point at the yard, along the road."""
    def fence(geometry: dict[str, Any], name: str, **props: Any) -> str:
        r = http.post("/api/v1/geofences", json={"type": "Feature", "geometry": geometry,
                                                  "properties": {"name": name, **props}})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    hub = fence({"type": "Point", "coordinates": [13.0, 52.0]}, "origin hub", radius_m=300)
    fence({"type": "LineString", "coordinates": [[13.05, 52.0], [13.45, 52.0]]}, "road",
          buffer_m=500)
    yard = [[13.495, 51.997], [13.505, 51.997], [13.505, 52.003], [13.495, 52.003],
            [13.495, 51.997]]
    fence({"type": "Polygon", "coordinates": [yard]}, "destination yard")
    ships = {}
    for device in devices:
        r = http.post("/api/v1/shipments", json={
            "reference": f"REF-{device}", "device_id": device, "created_at": iso(at(-60)),
            "origin": {"geofence_id": hub},
            "destination": {"lat": 52.0, "lon": 13.5, "radius_m": 300},
            "route": {"type": "LineString", "coordinates": [[13.0, 52.0], [13.5, 52.0]]}})
        assert r.status_code == 201, r.text
        ships[device] = r.json()["id"]
    return ships


def story(settings: Settings, device: str) -> list[tuple[str, float, str]]:
    """The device's events in log order, as (type, seconds after T0, what); the ETA's own
    events are tests/integration/test_eta_ingest.py's."""
    assert settings.database_url
    rows = query(settings.database_url,
                 "SELECT e.type, e.ts, coalesce(e.data ->> 'kind', g.name, '')"
                 " FROM events e LEFT JOIN geofences g ON g.id = e.geofence_id"
                 " WHERE e.device_id = %s AND e.ts >= %s AND e.data ->> 'kind' IS DISTINCT"
                 " FROM 'created' AND e.type <> ALL(%s) ORDER BY e.seq",
                 (device, T0, list(ETA_EVENTS)))
    return [(t, (ts - T0).total_seconds(), what) for t, ts, what in rows]


def stored(settings: Settings) -> int:
    return int(query(settings.database_url or "", "SELECT count(*) FROM positions")[0][0])


def all_processed(settings: Settings) -> None:
    """Publish a fix of a device of its own (far from every fence) and wait until ingest
    has stored it. Ingest reads its topics in order over one session and commits a batch's
    events with its positions, so all that was published before has been processed then:
    what the story holds now is all it will hold."""
    device = f"sentinel-{uuid.uuid4().hex[:8]}"
    publish(settings.mqtt_url or "", [(topic(settings, device),
                                       json.dumps(point(0, 0.0, lat=0.0)).encode())])
    wait_for(lambda: query(settings.database_url or "",
                           "SELECT count(*) FROM devices WHERE device_id = %s", (device,))[0][0])


def delivered(settings: Settings, device: str) -> bool:
    assert settings.database_url
    return bool(query(settings.database_url, "SELECT count(*) FROM shipments WHERE"
                      " device_id = %s AND status = 'delivered'", (device,))[0][0])


def test_a_trip_through_origin_corridor_and_destination(settings: Settings,
                                                        http: httpx.Client) -> None:
    ships = setup_world(http, ["truck-1"])
    live = LiveEvents(settings)
    try:
        with running_ingest(fast(settings)):
            publish(settings.mqtt_url or "", [(topic(settings, "truck-1"),
                                               json.dumps(f).encode()) for f in trip()])
            wait_for(lambda: len(story(settings, "truck-1")) >= len(EXPECTED))
            all_processed(settings)  # nothing more arrives
        assert story(settings, "truck-1") == EXPECTED
        shipment = http.get(f"/api/v1/shipments/{ships['truck-1']}").json()
        assert shipment["status"] == "delivered"
        # in time order, "created" first (created_at: a minute before this replayed trip)
        assert [(m["kind"], m["source"]) for m in shipment["milestones"]] == [
            ("created", "api"), ("picked_up", "device"), ("in_transit", "device"),
            ("out_for_delivery", "device"), ("delivered", "device")]
        assert [m["ts"] for m in shipment["milestones"]] == [
            iso(at(-60)), iso(at(600)), iso(at(690)), iso(at(2670)), iso(at(3570))]
        assert shipment["delivered_at"] == iso(at(3570))
        assert shipment["last_position"]["lon"] == 13.5  # where it was delivered
        assert shipment["exception"] is False
        stored = {e["id"] for e in http.get("/api/v1/events?device_id=truck-1&limit=100")
                  .json()["items"] if e["data"].get("kind") != "created"}  # made before
        wait_for(lambda: stored <= {e["id"] for e in live.items})
        sample = next(e for e in live.items if e["type"] == "geofence.enter")
        assert set(sample) == {"id", "type", "ts", "device_id", "shipment_id", "geofence_id",
                               "data"}
    finally:
        live.close()


def test_batches_and_out_of_order_arrival_give_the_same_events(settings: Settings,
                                                               http: httpx.Client) -> None:
    setup_world(http, ["in-order", "one-batch", "chunks"])
    rng = random.Random(4)
    whole = trip()
    rng.shuffle(whole)
    messages = [(topic(settings, "one-batch"), json.dumps(
        [{**f} for f in whole]).encode())]
    fixes = trip()
    for i in range(0, len(fixes), 20):
        chunk = fixes[i:i + 20]
        rng.shuffle(chunk)
        messages.append((topic(settings, "chunks"), json.dumps(chunk).encode()))
    messages += [(topic(settings, "in-order"), json.dumps(f).encode()) for f in trip()]
    with running_ingest(fast(settings)):
        publish(settings.mqtt_url or "", messages)
        for device in ("in-order", "one-batch", "chunks"):
            wait_for(lambda d=device: len(story(settings, d)) >= len(EXPECTED))  # type: ignore[misc]
    for device in ("in-order", "one-batch", "chunks"):
        assert story(settings, device) == EXPECTED, device


def test_boundary_jitter_makes_one_enter(settings: Settings, http: httpx.Client) -> None:
    r = http.post("/api/v1/geofences", json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [13.0, 52.0]},
        "properties": {"name": "gate", "radius_m": 200}})
    assert r.status_code == 201
    inside, outside = 13.0 + 0.0025, 13.0 + 0.0033  # ~171 m, ~226 m from the centre
    flicker = [point(4 * i, inside if i % 2 else outside, accuracy=8.0) for i in range(40)]
    stay = [point(160 + 4 * i, inside, accuracy=8.0) for i in range(10)]
    wobble = [point(200 + 4 * i, outside if i % 4 == 0 else inside, accuracy=8.0)
              for i in range(20)]
    fixes = flicker + stay + wobble
    with running_ingest(fast(settings)):
        publish(settings.mqtt_url or "", [(topic(settings, "jittery"), json.dumps(f).encode())
                                          for f in fixes])
        assert settings.database_url
        wait_for(lambda: query(settings.database_url or "", "SELECT count(*) FROM positions")[
            0][0] == len(fixes))
        all_processed(settings)
    assert story(settings, "jittery") == [("geofence.enter", 156, "gate")]


def test_restart_mid_trip_repeats_nothing(settings: Settings, http: httpx.Client) -> None:
    """Ingest killed (SIGKILL) mid-trip, the rest published while it is down, then the same
    fixes again: exactly the events of an uninterrupted trip."""
    setup_world(http, ["truck-9"])
    fixes = trip()
    first = [(topic(settings, "truck-9"), json.dumps(f).encode()) for f in fixes[:40]]
    rest = [(topic(settings, "truck-9"), json.dumps(f).encode()) for f in fixes[40:]]
    proc = ingest_process(settings)
    try:
        # re-sent until stored: then the session exists (a repeated fix is no event)
        publish_until(settings.mqtt_url or "", first[:1], lambda: stored(settings) > 0)
        publish(settings.mqtt_url or "", first[1:])
        wait_for(lambda: ("shipment.milestone", 690.0, "in_transit") in story(settings,
                                                                               "truck-9"))
    finally:
        proc.kill()
        proc.wait(10)
    publish(settings.mqtt_url or "", rest)  # held by the broker for the persistent session
    proc = ingest_process(settings)
    try:
        wait_for(lambda: delivered(settings, "truck-9"), timeout=30)
        publish(settings.mqtt_url or "", first + rest)  # duplicates: stored once, no events
        wait_for(lambda: len(story(settings, "truck-9")) >= len(EXPECTED))
        all_processed(settings)
    finally:
        proc.kill()
        proc.wait(10)
    assert story(settings, "truck-9") == EXPECTED


def test_scans_over_mqtt_are_milestones(settings: Settings, http: httpx.Client) -> None:
    ships = setup_world(http, ["van-1"])
    base = datetime.now(UTC)

    def after(sec: float) -> str:  # scans come after the shipment was made
        return iso(base + timedelta(seconds=sec))

    scans = [{"ts": after(1), "shipment_ref": "REF-van-1", "kind": "pickup",
              "lat": 52.0, "lon": 13.0},
             {"ts": after(2), "shipment_ref": "REF-van-1", "kind": "hub"},
             {"ts": after(2), "shipment_ref": "REF-van-1", "kind": "hub"},
             {"ts": after(0.5), "shipment_ref": "REF-van-1", "kind": "pickup"},
             {"ts": after(3), "shipment_ref": "NOT-A-SHIPMENT", "kind": "hub"},
             {"ts": after(3), "shipment_ref": "REF-van-1", "kind": "teleport"}]
    with running_ingest(fast(settings)):
        publish(settings.mqtt_url or "", [(scan_topic(settings, "dock-1"), json.dumps(s)
                                           .encode()) for s in scans])
        publish(settings.mqtt_url or "", [(scan_topic(settings, "dock-2"), json.dumps(
            [{"ts": after(4), "shipment_ref": "REF-van-1", "kind": "delivery"}]).encode())])
        wait_for(lambda: delivered(settings, "van-1"))
        assert settings.database_url
        wait_for(lambda: len(query(settings.database_url or "",
                                   "SELECT reason FROM dead_letters")) == 2)
    shipment = http.get(f"/api/v1/shipments/{ships['van-1']}").json()
    assert [(m["kind"], m["source"], m["data"].get("scanner_id")) for m in
            shipment["milestones"]] == [
        ("created", "api", None), ("picked_up", "scan", "dock-1"),
        ("in_transit", "scan", "dock-1"), ("hub", "scan", "dock-1"),
        ("delivered", "scan", "dock-2")]
    reasons = sorted(r[0] for r in query(settings.database_url,
                                         "SELECT reason FROM dead_letters"))
    assert reasons == ["bad_scan_kind", "unknown_shipment"]
    [(detail,)] = query(settings.database_url, "SELECT detail FROM dead_letters"
                        " WHERE reason = 'unknown_shipment'")
    assert "NOT-A-SHIPMENT" in detail


def test_each_exception_fires_and_resolves(settings: Settings, http: httpx.Client) -> None:
    """A shipment under way: a temperature excursion, a route deviation and a long stop,
    each an event and a flag with its reason, each resolved with an event."""
    fence = http.post("/api/v1/geofences", json={
        "type": "Feature", "geometry": {"type": "Point", "coordinates": [13.0, 52.0]},
        "properties": {"name": "start", "radius_m": 300}}).json()["id"]
    r = http.post("/api/v1/shipments", json={
        "reference": "COLD-1", "device_id": "reefer-1", "origin": {"geofence_id": fence},
        "created_at": iso(at(-60)),
        "destination": {"lat": 52.0, "lon": 14.5},
        "route": {"type": "LineString", "coordinates": [[13.0, 52.0], [14.5, 52.0]]},
        "route_corridor_m": 1000,
        "sensor_limits": {"temperature_c": {"min": 2, "max": 8, "for_s": 120}}})
    sid = r.json()["id"]
    cfg = fast(settings, route_deviation_grace_s=120, long_stop_s=600, geofence_debounce_s=0)

    def temp(v: float) -> dict[str, float]:
        return {"temperature_c": v}

    fixes = [point(0, 13.0, sensors=temp(5)), point(60, 13.01, sensors=temp(5)),
             point(120, 13.02, sensors=temp(5))]                       # picked up, in transit
    fixes += [point(180 + 60 * i, 13.03 + 0.01 * i, sensors=temp(9 + i)) for i in range(4)]
    fixes += [point(420, 13.07, sensors=temp(6))]                      # excursion 240..420
    fixes += [point(480 + 60 * i, 13.08 + 0.01 * i, lat=52.03) for i in range(4)]  # off route
    fixes += [point(720, 13.12)]                                       # back on the route
    fixes += [point(780 + 120 * i, 13.13) for i in range(7)]           # stopped 780..1500
    fixes += [point(1560, 13.2)]                                       # moving again
    flagged: list[dict[str, Any]] = []

    def watch() -> bool:
        ship = http.get(f"/api/v1/shipments/{sid}").json()
        if ship["exception"] and ship["exceptions"] not in [f["exceptions"] for f in flagged]:
            flagged.append(ship)
        return False

    with running_ingest(cfg):
        for f in fixes:
            publish(settings.mqtt_url or "", [(topic(settings, "reefer-1"),
                                               json.dumps(f).encode())])
            assert settings.database_url
            wait_for(lambda ts=f["ts"]: query(settings.database_url or "",  # type: ignore[misc]
                                              "SELECT count(*) FROM devices WHERE last_ts ="
                                              " %s", (ts,))[0][0] == 1)
            watch()
    got = [(t, s) for t, s, _ in story(settings, "reefer-1") if not t.startswith("shipment.")]
    assert got == [("geofence.enter", 0), ("geofence.exit", 60),
                   ("sensor.excursion", 300), ("sensor.excursion_resolved", 420),
                   ("route.deviation", 600), ("route.deviation_resolved", 720),
                   ("device.long_stop", 1380), ("device.long_stop_resolved", 1560)]
    codes = http.get(f"/api/v1/events?shipment_id={sid}&type=shipment.exception&order=asc"
                     ).json()["items"]
    assert [e["data"]["code"] for e in codes] == ["sensor_excursion", "route_deviation",
                                                  "long_stop"]
    cleared = http.get(f"/api/v1/events?shipment_id={sid}&type=shipment.exception_cleared"
                       "&order=asc").json()["items"]
    assert [(e["data"]["cleared"][0]["code"], e["data"]["source"]) for e in cleared] == [
        ("sensor_excursion", "device"), ("route_deviation", "device"), ("long_stop", "device")]
    reasons = [f["exception_reason"] for f in flagged]
    assert any(r and r.startswith("temperature_c 11 outside 2..8") for r in reasons), reasons
    assert any(r and r.startswith("off the planned route by") for r in reasons), reasons
    assert any(r and r.startswith("stopped for 10 min") for r in reasons), reasons
    final = http.get(f"/api/v1/shipments/{sid}").json()
    assert (final["exception"], final["exceptions"]) == (False, [])
    events = http.get(f"/api/v1/events?shipment_id={sid}&type=sensor.*&order=asc").json()
    assert [e["data"]["peak"] for e in events["items"]] == [11, 12]


def test_offline_sweep_and_back_online(settings: Settings, http: httpx.Client) -> None:
    setup_world(http, ["tracker-7"])
    cfg = fast(settings, offline_after_s=1.5)

    def now_fix() -> bytes:
        return json.dumps({"ts": iso(datetime.now(UTC)), "lat": 51.0, "lon": 10.0}).encode()

    def types() -> list[str]:  # (each also a shipment.exception*: test_statuses checks them)
        return [t for t, _, _ in story(settings, "tracker-7")
                if not t.startswith("shipment.exception")]

    with running_ingest(cfg):
        publish(settings.mqtt_url or "", [(topic(settings, "tracker-7"), now_fix())])
        wait_for(lambda: types() == ["device.offline"], timeout=10)
        ship = http.get("/api/v1/shipments?device_id=tracker-7").json()["items"][0]
        assert ship["exception"] and ship["exception_reason"].startswith("no position since")
        publish(settings.mqtt_url or "", [(topic(settings, "tracker-7"), now_fix())])
        wait_for(lambda: types()[:2] == ["device.offline", "device.online"], timeout=10)
        ship = http.get("/api/v1/shipments?device_id=tracker-7").json()["items"][0]
        assert not ship["exception"]
        [offline, online] = http.get("/api/v1/events?device_id=tracker-7&order=asc"
                                     "&type=device.*").json()["items"][:2]
        assert offline["shipment_id"] == ship["id"] and offline["data"]["last_seen"]
        assert online["data"]["offline_since"] == offline["data"]["last_seen"]


def probe(settings: Settings, device: str, start: int, done: Callable[[], object]) -> int:
    """Fixes of ``device`` at (8.0, 50.0), one second apart from ``start``, each waited
    for until stored, until ``done()``; the second of the fix after which it was."""
    for sec in range(start, start + 600):
        publish(settings.mqtt_url or "", [(topic(settings, device), json.dumps(
            point(sec, 8.0, lat=50.0)).encode())])
        wait_for(partial(query, settings.database_url or "", "SELECT 1 FROM positions"
                         " WHERE device_id = %s AND ts = %s", (device, at(sec))))
        if done():
            return sec
    pytest.fail("600 fixes and still not done")


def test_geofence_changes_reach_a_running_ingest(settings: Settings,
                                                 http: httpx.Client) -> None:
    cfg = fast(settings, geofence_debounce_s=0)
    with running_ingest(cfg):
        publish(settings.mqtt_url or "", [(topic(settings, "d1"), json.dumps(
            point(0, 8.0, lat=50.0)).encode())])
        wait_for(lambda: query(settings.database_url or "", "SELECT count(*) FROM devices")[
            0][0] == 1)
        r = http.post("/api/v1/geofences", json={
            "type": "Feature", "geometry": {"type": "Point", "coordinates": [8.0, 50.0]},
            "properties": {"name": "late fence", "radius_m": 100}})
        fid = r.json()["id"]
        # the running ingest takes the new fence in within a reload period: its first fix
        # processed after that enters
        entered = probe(settings, "d1", 10, lambda: story(settings, "d1"))
        assert story(settings, "d1") == [("geofence.enter", entered, "late fence")]
        moved = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [9.0, 50.0]},
                 "properties": {"name": "late fence", "radius_m": 100}}
        assert http.put(f"/api/v1/geofences/{fid}", json=moved).status_code == 200
        left = probe(settings, "d1", entered + 1, lambda: len(story(settings, "d1")) > 1)
    assert story(settings, "d1") == [("geofence.enter", entered, "late fence"),
                                     ("geofence.exit", left, "late fence")]
