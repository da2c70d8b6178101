"""Geofences, shipments, events and scans over REST, against the real database and broker."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from shiptrack.config import Settings
from shiptrack.mqtturl import parse_mqtt_url
from shiptrack.topics import LIVE_EVENTS
from tests.helpers import query, running_api, wait_for

AUTH = {"Authorization": "Bearer test-admin-token"}
SQUARE = [[13.0, 52.0], [13.1, 52.0], [13.1, 52.1], [13.0, 52.1], [13.0, 52.0]]


def feature(geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": {"name": "yard", **props}}


@pytest.fixture
def http(settings: Settings) -> Iterator[httpx.Client]:
    with running_api(settings) as base, httpx.Client(base_url=base, headers=AUTH,
                                                     timeout=10) as client:
        yield client


class LiveEvents:
    """Everything published on the live events topic while it runs."""

    def __init__(self, settings: Settings) -> None:
        target = parse_mqtt_url(settings.mqtt_url or "")
        self.items: list[dict[str, Any]] = []
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  protocol=mqtt.MQTTv5)
        self.client.on_message = lambda c, u, m: self.items.extend(json.loads(m.payload))
        self.client.connect(target.host, target.port)
        self.client.loop_start()
        info = self.client.subscribe(settings.mqtt_topic_prefix + LIVE_EVENTS, qos=1)
        assert info[0] == 0

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_geofence_crud_and_the_shapes(http: httpx.Client, settings: Settings) -> None:
    shapes = [
        feature({"type": "Polygon", "coordinates": [SQUARE]}),
        feature({"type": "MultiPolygon", "coordinates": [[SQUARE]]}, name="multi"),
        feature({"type": "Point", "coordinates": [13.4, 52.5]}, name="hub", radius_m=250,
                dwell_s=60, color="red"),
        feature({"type": "LineString", "coordinates": [[13, 52], [13.5, 52.2]]}, name="road",
                buffer_m=400),
    ]
    made = []
    for body in shapes:
        r = http.post("/api/v1/geofences", json=body)
        assert r.status_code == 201, r.text
        made.append(r.json())
    assert [g["kind"] for g in made] == ["polygon", "polygon", "circle", "corridor"]
    hub = made[2]
    assert hub["type"] == "Feature" and hub["id"].startswith("gf_")
    assert hub["geometry"] == {"type": "Point", "coordinates": [13.4, 52.5]}
    assert hub["properties"] == {"name": "hub", "radius_m": 250, "dwell_s": 60, "color": "red"}
    page = http.get("/api/v1/geofences?limit=3").json()
    assert [g["id"] for g in page["items"]] == [g["id"] for g in made[:3]]
    rest = http.get(f"/api/v1/geofences?limit=3&cursor={page['next_cursor']}").json()
    assert [g["id"] for g in rest["items"]] == [made[3]["id"]] and rest["next_cursor"] is None
    assert http.get(f"/api/v1/geofences/{hub['id']}").json() == hub
    moved = feature({"type": "Point", "coordinates": [13.41, 52.51]}, name="hub 2", radius_m=99)
    r = http.put(f"/api/v1/geofences/{hub['id']}", json=moved)
    assert r.status_code == 200 and r.json()["properties"]["radius_m"] == 99
    assert r.json()["updated_at"] > hub["updated_at"]
    assert http.delete(f"/api/v1/geofences/{hub['id']}").status_code == 204
    assert http.get(f"/api/v1/geofences/{hub['id']}").status_code == 404
    assert http.delete(f"/api/v1/geofences/{hub['id']}").status_code == 404
    assert http.put("/api/v1/geofences/gf_nope", json=moved).status_code == 404
    assert settings.database_url
    [(version,)] = query(settings.database_url,
                         "SELECT version FROM tracking_versions WHERE name = 'geofences'")
    assert version >= 6  # 4 created, 1 replaced, 1 deleted (+ no-ops): ingest sees each
    assert http.get("/api/v1/geofences", headers={"Authorization": "Bearer no"}).status_code \
        == 401


@pytest.mark.parametrize(("body", "message"), [
    (feature({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}),
     "self-intersection"),
    (feature({"type": "Polygon", "coordinates": [SQUARE[:-1]]}), "is not closed"),
    (feature({"type": "Point", "coordinates": [13.4, 52.5]}, radius_m=0), "radius_m must be > 0"),
    (feature({"type": "Point", "coordinates": [190, 52.5]}, radius_m=5), "outside -180..180"),
    (feature({"type": "Polygon", "coordinates": [[[i * 1e-4, (i % 2) * 1e-4] for i in range(
        10_001)] + [[0, 0]]]}), "at most 10000"),
    (feature({"type": "LineString", "coordinates": [[13, 52], [14, 52]]}), "buffer_m"),
    ({"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]},
      "properties": {"radius_m": 5}}, "properties.name is required"),
    ([1, 2, 3], "valid dictionary"),
])
def test_bad_geometry_is_422_and_nothing_is_stored(http: httpx.Client, settings: Settings,
                                                   body: Any, message: str) -> None:
    r = http.post("/api/v1/geofences", json=body)
    assert r.status_code == 422, r.text
    assert message in r.json()["error"]["message"]
    assert settings.database_url
    assert query(settings.database_url, "SELECT count(*) FROM geofences")[0][0] == 0


def test_shipment_lifecycle_over_rest(http: httpx.Client, settings: Settings) -> None:
    live = LiveEvents(settings)
    try:
        fence = http.post("/api/v1/geofences", json=feature(
            {"type": "Point", "coordinates": [13.5, 52.0]}, radius_m=300)).json()
        body = {"reference": "PO-1", "device_id": "truck-1",
                "origin": {"lat": 52.0, "lon": 13.0},
                "destination": {"geofence_id": fence["id"]},
                "promised_by": "2026-11-27T16:00:00Z",
                "route": {"type": "LineString", "coordinates": [[13.0, 52.0], [13.5, 52.0]]},
                "sensor_limits": {"temperature_c": {"min": 2, "max": 8}, "shock_g": {"max": 4}}}
        r = http.post("/api/v1/shipments", json=body)
        assert r.status_code == 201, r.text
        ship = r.json()
        assert ship["id"].startswith("shp_") and ship["status"] == "created"
        assert len(ship["tracking_token"]) >= 43  # 256 bits, url-safe base64
        assert ship["tracking_url"] == f"/t/{ship['tracking_token']}"
        assert ship["origin"] == {"lat": 52.0, "lon": 13.0, "radius_m": 250.0}
        assert ship["sensor_limits"] == {
            "temperature_c": {"min": 2.0, "max": 8.0, "for_s": 600.0},
            "shock_g": {"min": None, "max": 4.0, "for_s": 0.0}}
        assert [m["kind"] for m in ship["milestones"]] == ["created"]
        for key in ("eta", "eta_low", "eta_high", "remaining_m", "last_position"):
            assert ship[key] is None
        assert (ship["at_risk"], ship["exception"], ship["exception_reason"]) == (False, False,
                                                                                  None)
        dup = http.post("/api/v1/shipments", json=body)
        assert dup.status_code == 409 and dup.json()["error"]["code"] == "duplicate_reference"
        other = http.post("/api/v1/shipments", json={**body, "reference": "PO-2",
                                                     "device_id": "truck-2"}).json()
        r = http.delete(f"/api/v1/geofences/{fence['id']}")  # where two shipments end
        assert r.status_code == 409 and r.json()["error"]["code"] == "in_use"

        # scans over REST: pickup, hub (also in transit), a late pickup, unknown reference
        created = datetime.fromisoformat(ship["created_at"])

        def scan(kind: str, sec: float, ref: str = "PO-1") -> httpx.Response:
            ts = (created + timedelta(milliseconds=sec)).isoformat()  # before the PATCHes
            return http.post("/api/v1/scans", json={"scanner_id": "dock-3", "ts": ts,
                                                    "shipment_ref": ref, "kind": kind,
                                                    "lat": 52.0, "lon": 13.0})

        r = scan("pickup", 1)
        assert r.status_code == 200 and [m["kind"] for m in r.json()["recorded"]] == [
            "picked_up"]
        r = scan("hub", 3)
        assert [m["kind"] for m in r.json()["recorded"]] == ["in_transit", "hub"]
        assert r.json()["status"] == "in_transit"
        assert scan("pickup", 2).json()["recorded"] == []
        assert scan("hub", 3).json()["recorded"] == []
        r = scan("hub", 3, ref="NOPE")
        assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_shipment"
        assert settings.database_url
        assert query(settings.database_url, "SELECT source, reason FROM dead_letters") == [
            ("http", "unknown_shipment")]

        # patch: promise, limits, a manual exception, clearing it, delivered, no way back
        r = http.patch(f"/api/v1/shipments/{ship['id']}", json={
            "promised_by": None, "sensor_limits": {"humidity_pct": {"max": 80, "for_s": 30}}})
        assert r.status_code == 200, r.text
        assert r.json()["promised_by"] is None
        assert r.json()["sensor_limits"] == {"humidity_pct": {"min": None, "max": 80.0,
                                                              "for_s": 30.0}}
        r = http.patch(f"/api/v1/shipments/{ship['id']}",
                       json={"exception": True, "exception_reason": "refused at the gate"})
        assert (r.json()["exception"], r.json()["exception_reason"]) == (True,
                                                                         "refused at the gate")
        assert [s["id"] for s in http.get("/api/v1/shipments?exception=true").json()[
            "items"]] == [ship["id"]]
        r = http.patch(f"/api/v1/shipments/{ship['id']}", json={"exception": False})
        assert (r.json()["exception"], r.json()["exceptions"]) == (False, [])
        r = http.patch(f"/api/v1/shipments/{ship['id']}", json={"status": "delivered"})
        assert r.json()["status"] == "delivered" and r.json()["delivered_at"] is not None
        assert [(m["kind"], m["source"]) for m in r.json()["milestones"]] == [
            ("created", "api"), ("picked_up", "scan"), ("in_transit", "scan"),
            ("hub", "scan"), ("delivered", "api")]
        r = http.patch(f"/api/v1/shipments/{ship['id']}", json={"status": "in_transit"})
        assert r.status_code == 409 and r.json()["error"]["code"] == "status_backwards"
        assert scan("hub", 4).json()["recorded"] == []  # delivered

        # lists and filters
        items = http.get("/api/v1/shipments").json()["items"]
        assert [s["id"] for s in items] == [other["id"], ship["id"]]  # newest first
        delivered = http.get("/api/v1/shipments?status=delivered").json()["items"]
        assert [s["reference"] for s in delivered] == ["PO-1"]
        assert http.get("/api/v1/shipments?at_risk=true").json()["items"] == []
        page = http.get("/api/v1/shipments?limit=1").json()
        assert page["next_cursor"] and page["items"][0]["id"] == other["id"]
        assert http.get(f"/api/v1/shipments?limit=1&cursor={page['next_cursor']}").json()[
            "items"][0]["id"] == ship["id"]
        assert http.get("/api/v1/shipments/shp_nope").status_code == 404
        assert http.get("/api/v1/shipments?status=lost").status_code == 422

        # the events of it all, stored and published
        events = http.get(f"/api/v1/events?shipment_id={ship['id']}&order=asc").json()["items"]
        assert [(e["type"], e["data"].get("kind")) for e in events] == [
            ("shipment.milestone", "created"), ("shipment.milestone", "picked_up"),
            ("shipment.milestone", "in_transit"), ("shipment.milestone", "hub"),
            ("shipment.exception", "manual"), ("shipment.exception_cleared", None),
            ("shipment.milestone", "delivered")]
        assert all(e["device_id"] == "truck-1" and e["id"].startswith("evt_") for e in events)
        ids = {e["id"] for e in events}
        wait_for(lambda: ids <= {e["id"] for e in live.items})
    finally:
        live.close()


def test_shipment_input_is_checked(http: httpx.Client) -> None:
    base = {"reference": "R", "device_id": "d1", "origin": {"lat": 1, "lon": 2},
            "destination": {"lat": 1.5, "lon": 2}}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"origin": {"lat": 91, "lon": 2}}, "origin.lat 91.0 is outside -90..90"),
        ({"origin": {"lon": 2}}, "origin needs lat and lon"),
        ({"destination": {"geofence_id": "gf_missing"}}, "no geofence 'gf_missing'"),
        ({"destination": {"geofence_id": "gf_x", "lat": 1}}, "either a geofence_id or lat"),
        ({"origin": {"lat": 1, "lon": 2, "radius_m": -1}}, "radius_m must be > 0"),
        ({"route": {"type": "Point", "coordinates": [1, 2]}}, "route must be a GeoJSON"),
        ({"sensor_limits": {"temperature_c": {"min": 9, "max": 2}}}, "min 9.0 is above max"),
        ({"sensor_limits": {"temperature_c": {}}}, "needs min or max"),
        ({"device_id": "bad id!"}, "device_id"),
        ({"promised_by": "2026-11-27T16:00:00"}, "promised_by"),
        ({"reference": ""}, "reference"),
    ]
    for change, message in cases:
        r = http.post("/api/v1/shipments", json={**base, **change})
        assert r.status_code == 422, (change, r.text)
        assert message in r.json()["error"]["message"], (change, r.text)
    ok = http.post("/api/v1/shipments", json={**base, "reference": secrets.token_hex(4)})
    assert ok.status_code == 201
    sid = ok.json()["id"]
    r = http.patch(f"/api/v1/shipments/{sid}", json={"exception": True})
    assert r.status_code == 422 and "exception_reason" in r.json()["error"]["message"]
    assert http.patch(f"/api/v1/shipments/{sid}", json={"nope": 1}).status_code == 422
    assert http.patch("/api/v1/shipments/shp_x", json={}).status_code == 404


def test_events_filters_and_cursor(http: httpx.Client, settings: Settings) -> None:
    assert settings.database_url
    rows = [(f"evt_{i:026d}", f"2026-11-26T10:{i:02d}:00Z", t, d)
            for i, (t, d) in enumerate([("geofence.enter", "a"), ("geofence.exit", "a"),
                                        ("device.offline", "b"), ("geofence.enter", "b"),
                                        ("shipment.milestone", "a")])]
    for row in rows:
        query(settings.database_url, "INSERT INTO events (id, ts, type, device_id) VALUES"
              " (%s, %s, %s, %s) RETURNING seq", row)

    def ids(params: str) -> list[str]:
        r = http.get(f"/api/v1/events?{params}")
        assert r.status_code == 200, r.text
        return [e["id"][-1] for e in r.json()["items"]]

    assert ids("") == ["4", "3", "2", "1", "0"]  # newest first
    assert ids("since=2026-11-26T10:02:00Z") == ["2", "3", "4"]  # catching up: oldest first
    assert ids("since=2026-11-26T10:01:00Z&until=2026-11-26T10:03:00Z&order=desc") == ["2",
                                                                                      "1"]
    assert ids("type=geofence.enter") == ["3", "0"]
    assert ids("type=geofence.*,device.offline&device_id=b") == ["3", "2"]
    assert ids("device_id=a&type=shipment.milestone") == ["4"]
    page = http.get("/api/v1/events?limit=2&order=asc").json()
    assert [e["id"][-1] for e in page["items"]] == ["0", "1"]
    nxt = http.get(f"/api/v1/events?limit=2&order=asc&cursor={page['next_cursor']}").json()
    assert [e["id"][-1] for e in nxt["items"]] == ["2", "3"]
    assert http.get("/api/v1/events?since=yesterday").status_code == 422
    assert http.get("/api/v1/events?since=2026-11-26T10:00:00").status_code == 422
    assert http.get("/api/v1/events?cursor=xyz").status_code == 400
    event = http.get("/api/v1/events?limit=1").json()["items"][0]
    assert set(event) == {"id", "type", "ts", "device_id", "shipment_id", "geofence_id",
                          "data", "created_at"}
