"""The SPEC's status model over the real doors: REST scans and PATCH with the new statuses
and exception codes, MQTT scans through ingest, and the events they make."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shiptrack.config import Settings
from tests.helpers import publish, query, running_api, running_ingest, wait_for
from tests.integration.test_tracking import fast, iso, scan_topic
from tests.integration.test_tracking_api import AUTH

PLACE = {"lat": 52.0, "lon": 13.0}


@pytest.fixture
def http(settings: Settings) -> Iterator[httpx.Client]:
    with running_api(settings) as base, httpx.Client(base_url=base, headers=AUTH,
                                                     timeout=10) as client:
        yield client


def new(http: httpx.Client, ref: str, **extra: Any) -> dict[str, Any]:
    r = http.post("/api/v1/shipments", json={"reference": ref, "device_id": "van-9",
                                              "origin": PLACE, "destination": PLACE,
                                              **extra})
    assert r.status_code == 201, r.text
    ship: dict[str, Any] = r.json()
    return ship


def test_patch_follows_the_transitions(http: httpx.Client) -> None:
    ship = new(http, "P-1")

    def patch(**body: Any) -> httpx.Response:
        return http.patch(f"/api/v1/shipments/{ship['id']}", json=body)

    for status in ("in_transit", "out_for_delivery", "attempt_failed", "out_for_delivery",
                   "attempt_failed", "available_for_pickup"):
        r = patch(status=status)
        assert r.status_code == 200 and r.json()["status"] == status, r.text
    r = patch(status="attempt_failed")
    assert r.status_code == 409 and r.json()["error"]["code"] == "status_not_allowed"
    assert "out_for_delivery" in r.json()["error"]["message"]
    r = patch(status="in_transit")
    assert r.status_code == 409 and r.json()["error"]["code"] == "status_backwards"
    r = patch(exception=True, exception_reason="storm over the depot", exception_code="weather")
    assert (r.json()["exception_code"], r.json()["exceptions"][0]["code"]) == ("weather",
                                                                               "weather")
    assert [s["id"] for s in http.get("/api/v1/shipments?exception_code=weather").json()[
        "items"]] == [ship["id"]]
    assert patch(exception=True, exception_reason="x", exception_code="nope").status_code == 422
    r = patch(status="cancelled")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = patch(status="delivered")
    assert r.status_code == 409 and r.json()["error"]["code"] == "status_backwards"
    milestones = http.get(f"/api/v1/shipments/{ship['id']}").json()["milestones"]
    assert [(m["kind"], m["source"]) for m in milestones] == [
        ("created", "api"), ("in_transit", "api"), ("out_for_delivery", "api"),
        ("attempt_failed", "api"), ("out_for_delivery", "api"), ("attempt_failed", "api"),
        ("available_for_pickup", "api"), ("cancelled", "api")]
    events = http.get(f"/api/v1/events?shipment_id={ship['id']}&order=asc").json()["items"]
    exc = [e for e in events if e["type"] == "shipment.exception"]
    assert [(e["data"]["code"], e["data"]["reason"], e["data"]["source"]) for e in exc] == [
        ("weather", "storm over the depot", "api")]
    steps = [e["data"]["kind"] for e in events if e["type"] == "shipment.milestone"]
    assert steps == [m["kind"] for m in milestones]
    assert http.get("/api/v1/shipments?status=cancelled").json()["items"][0]["id"] == ship["id"]


def test_carrier_fields_are_checked(http: httpx.Client) -> None:
    base = {"reference": "C-1", "destination": PLACE}
    for extra, message in [
        ({}, "device_id and origin are required"),
        ({"device_id": "d1"}, "device_id and origin are required"),
        ({"carrier": "dhl"}, "go together"),
        ({"carrier_tracking_number": "123"}, "go together"),
    ]:
        r = http.post("/api/v1/shipments", json={**base, **extra})
        assert r.status_code == 422 and message in r.json()["error"]["message"], r.text
    r = http.post("/api/v1/shipments", json={**base, "carrier": "DHL!",
                                             "carrier_tracking_number": "1"})
    assert r.status_code == 422
    ship = http.post("/api/v1/shipments", json={**base, "carrier": "dhl",
                                                "carrier_tracking_number": "123"}).json()
    r = http.patch(f"/api/v1/shipments/{ship['id']}", json={"carrier": None,
                                                             "carrier_tracking_number": None})
    assert r.status_code == 422 and "cannot be removed" in r.json()["error"]["message"]
    truck = new(http, "C-2")  # a truck's shipment gets a carrier leg later
    r = http.patch(f"/api/v1/shipments/{truck['id']}", json={
        "carrier": "ups", "carrier_tracking_number": "1Z999AA10123456784"})
    assert (r.json()["carrier"], r.json()["carrier_tracking_number"]) == (
        "ups", "1Z999AA10123456784")
    assert [s["id"] for s in http.get("/api/v1/shipments?carrier=ups").json()["items"]] == [
        truck["id"]]


def test_rest_scans_of_the_new_kinds(http: httpx.Client, settings: Settings) -> None:
    ship = new(http, "S-1")
    at = datetime.fromisoformat(ship["created_at"])

    def scan(kind: str, sec: float) -> httpx.Response:
        return http.post("/api/v1/scans", json={"scanner_id": "dock-3", "kind": kind,
                                                "shipment_ref": "S-1",
                                                "ts": iso(at + timedelta(seconds=sec))})

    assert [m["kind"] for m in scan("out_for_delivery", 1).json()["recorded"]] == [
        "out_for_delivery"]
    r = scan("damaged", 2)
    assert r.status_code == 200 and r.json()["recorded"] == []
    state = http.get(f"/api/v1/shipments/{ship['id']}").json()
    assert (state["exception_code"], state["exceptions"][0]["kind"]) == ("damaged",
                                                                         "scan:damaged")
    assert [m["kind"] for m in scan("available_for_pickup", 3).json()["recorded"]] == [
        "available_for_pickup"]
    assert scan("attempt_failed", 4).json()["recorded"] == []  # not from a pickup point
    assert [m["kind"] for m in scan("returned", 5).json()["recorded"]] == [
        "returned_to_sender"]
    assert scan("delivery", 6).json()["recorded"] == []  # final
    assert scan("teleport", 7).status_code == 422
    public = httpx.get(f"{http.base_url}/api/v1/track/{ship['tracking_token']}").json()
    assert (public["status"], public["exception_code"]) == ("returned_to_sender", "damaged")


def test_mqtt_scans_of_the_new_kinds(http: httpx.Client, settings: Settings) -> None:
    ship = new(http, "M-1")
    base = datetime.now(UTC)
    scans = [{"ts": iso(base + timedelta(seconds=s)), "shipment_ref": "M-1", "kind": k}
             for s, k in [(1, "pickup"), (2, "out_for_delivery"), (3, "attempt_failed"),
                          (4, "lost"), (5, "out_for_delivery"), (6, "delivery")]]
    with running_ingest(fast(settings)):
        publish(settings.mqtt_url or "", [(scan_topic(settings, "dock-7"),
                                           json.dumps(scans).encode())])
        wait_for(lambda: query(settings.database_url or "", "SELECT status FROM shipments"
                               " WHERE id = %s", (ship["id"],)) == [("delivered",)])
    state = http.get(f"/api/v1/shipments/{ship['id']}").json()
    assert [(m["kind"], m["source"]) for m in state["milestones"]] == [
        ("created", "api"), ("picked_up", "scan"), ("out_for_delivery", "scan"),
        ("attempt_failed", "scan"), ("out_for_delivery", "scan"), ("delivered", "scan")]
    assert [(x["kind"], x["code"]) for x in state["exceptions"]] == [("scan:lost", "lost")]
    events = http.get(f"/api/v1/events?shipment_id={ship['id']}&type=shipment.exception"
                      ).json()["items"]
    assert [(e["data"]["code"], e["data"]["source"]) for e in events] == [("lost", "scan")]
