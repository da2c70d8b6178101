"""A scan does the same whichever door it comes in by (``shiptrack.scans.scan_action``):
the MQTT topic (ingest) and ``POST /api/v1/scans`` (the API)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shiptrack.config import Settings
from tests.helpers import publish, query, running_api, running_ingest, wait_for
from tests.integration.test_statuses import new
from tests.integration.test_tracking import fast, iso, scan_topic
from tests.integration.test_tracking_api import AUTH


@pytest.fixture
def http(settings: Settings) -> Iterator[httpx.Client]:
    with running_api(settings) as base, httpx.Client(base_url=base, headers=AUTH,
                                                     timeout=10) as client:
        yield client


def delivered(http: httpx.Client, ref: str) -> dict[str, Any]:
    ship = new(http, ref)
    r = http.patch(f"/api/v1/shipments/{ship['id']}", json={"status": "delivered"})
    assert r.status_code == 200 and r.json()["status"] == "delivered", r.text
    return ship


def exceptions(http: httpx.Client, ship: dict[str, Any]) -> list[Any]:
    items: list[Any] = http.get(f"/api/v1/shipments/{ship['id']}").json()["exceptions"]
    return items


def test_a_damaged_scan_of_a_delivered_shipment_changes_nothing_at_either_door(
        http: httpx.Client, settings: Settings) -> None:
    at = datetime.now(UTC) + timedelta(seconds=1)
    rest = delivered(http, "REST-1")
    r = http.post("/api/v1/scans", json={"scanner_id": "dock-3", "kind": "damaged",
                                         "shipment_ref": "REST-1", "ts": iso(at)})
    assert r.status_code == 200 and r.json()["recorded"] == []
    assert r.json()["status"] == "delivered"
    assert exceptions(http, rest) == []

    mqtt = delivered(http, "MQTT-1")
    scans = [{"ts": iso(at), "shipment_ref": "MQTT-1", "kind": "damaged"},
             {"ts": iso(at), "shipment_ref": "NOPE", "kind": "pickup"}]  # the sentinel
    db = settings.database_url or ""
    with running_ingest(fast(settings)):
        publish(settings.mqtt_url or "", [(scan_topic(settings, "dock-7"),
                                           json.dumps(scans).encode())])
        wait_for(lambda: query(db, "SELECT reason FROM dead_letters WHERE source = 'mqtt'")
                 == [("unknown_shipment",)])
    assert exceptions(http, mqtt) == []
    assert query(db, "SELECT count(*) FROM events WHERE type = 'shipment.exception'") == [
        (0,)]


def test_a_hub_scan_before_transit_records_the_same_at_either_door(
        http: httpx.Client, settings: Settings) -> None:
    at = datetime.now(UTC) + timedelta(seconds=1)
    rest, mqtt = new(http, "REST-2"), new(http, "MQTT-2")
    r = http.post("/api/v1/scans", json={"scanner_id": "hub-1", "kind": "hub", "lat": 52.0,
                                         "lon": 13.0, "shipment_ref": "REST-2",
                                         "ts": iso(at)})
    assert [m["kind"] for m in r.json()["recorded"]] == ["in_transit", "hub"]
    scan = {"ts": iso(at), "shipment_ref": "MQTT-2", "kind": "hub", "lat": 52.0, "lon": 13.0}
    db = settings.database_url or ""

    def milestones(ship: dict[str, Any]) -> list[tuple[Any, ...]]:
        return query(db, "SELECT data - 'reference' FROM events WHERE shipment_id = %s"
                         " AND type = 'shipment.milestone' ORDER BY seq", (ship["id"],))

    with running_ingest(fast(settings)):
        publish(settings.mqtt_url or "", [(scan_topic(settings, "hub-1"),
                                           json.dumps(scan).encode())])
        wait_for(lambda: len(milestones(mqtt)) == 3)  # created, in_transit, hub
    assert milestones(mqtt) == milestones(rest)
    assert [m[0]["kind"] for m in milestones(rest)] == ["created", "in_transit", "hub"]
