"""The exceptions queue over REST: states from the pairing table, acknowledgements shared
by every dispatcher (stored, and published live)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shiptrack.config import Settings
from shiptrack.events import make_event
from tests.helpers import query, running_api, wait_for
from tests.integration.test_tracking_api import AUTH, LiveEvents

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)


@pytest.fixture
def http(settings: Settings) -> Iterator[httpx.Client]:
    with running_api(settings) as base, httpx.Client(base_url=base, headers=AUTH,
                                                     timeout=10) as client:
        yield client


def store(db_url: str, type_: str, minutes: int, **kw: Any) -> str:
    """An event as ingest stores it (in log order: seq follows the calls)."""
    e = make_event(type_, T0 + timedelta(minutes=minutes), **kw)
    query(db_url, "INSERT INTO events (id, ts, type, device_id, shipment_id, data)"
          " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
          (e.id, e.ts, e.type, e.device_id, e.shipment_id, json.dumps(e.data)))
    return e.id


def ids(http: httpx.Client, state: str) -> list[str]:
    r = http.get(f"/api/v1/exceptions?state={state}")
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["items"]]


def detected(db: str, kind: str, minutes: int, shipment: str, **detail: Any) -> str:
    """A detector's exception as ingest stores it: its own event, and beside it (same
    shipment and time) the shipment.exception every exception has."""
    store(db, kind.split(":")[0], minutes, device_id="d1", shipment_id=shipment, data=detail)
    code = {"device.offline": "offline", "device.long_stop": "long_stop"}.get(
        kind, "sensor_excursion")
    return store(db, "shipment.exception", minutes, device_id="d1", shipment_id=shipment,
                 data={"kind": kind, "code": code, "reason": "r", "source": "device"})


def cleared(db: str, kind: str, minutes: int, shipment: str) -> str:
    return store(db, "shipment.exception_cleared", minutes, device_id="d1",
                 shipment_id=shipment, data={"cleared": [{"kind": kind}], "source": "device"})


def test_queue_states_and_acknowledgement(http: httpx.Client, settings: Settings) -> None:
    db = settings.database_url or ""
    offline = detected(db, "device.offline", 0, "s1")
    cleared(db, "device.offline", 5, "s2")  # another shipment's
    hot = detected(db, "sensor.excursion:temperature_c", 6, "s1", sensor="temperature_c",
                   value=9.2, min=2, max=8)
    cleared(db, "sensor.excursion:shock_g", 7, "s1")  # another sensor: still out
    rest = detected(db, "device.long_stop", 8, "s1")
    cleared(db, "device.long_stop", 9, "s1")
    alone = store(db, "device.offline", 9, device_id="d7")  # a device with no shipment
    store(db, "geofence.enter", 10, device_id="d1")  # not an exception
    assert ids(http, "open") == [alone, hot, offline]  # detectors' own events not doubled
    assert ids(http, "resolved") == [rest]
    item = http.get("/api/v1/exceptions?state=resolved").json()["items"][0]
    assert item["code"] == "long_stop" and item["resolved"]["type"] == "shipment.exception_cleared"
    assert item["state"] == "resolved" and item["acknowledged"] is None
    open_hot = next(i for i in http.get("/api/v1/exceptions?state=open").json()["items"]
                    if i["id"] == hot)
    assert open_hot["detection"] == {"type": "sensor.excursion", "data": {
        "sensor": "temperature_c", "value": 9.2, "min": 2, "max": 8}}
    assert len(http.get("/api/v1/exceptions").json()["items"]) == 4

    live = LiveEvents(settings)
    try:
        r = http.post(f"/api/v1/exceptions/{hot}/acknowledge",
                      json={"note": "driver checks the unit", "by": "Ana"})
        assert r.status_code == 200, r.text
        acked = r.json()
        assert acked["state"] == "acknowledged" and acked["code"] == "sensor_excursion"
        assert acked["acknowledged"]["by"] == "Ana"
        assert acked["acknowledged"]["note"] == "driver checks the unit"
        at = datetime.fromisoformat(acked["acknowledged"]["at"])
        assert abs((at - datetime.now(UTC)).total_seconds()) < 600
        seen = wait_for(lambda: [e for e in live.items if e["type"] == "exception.acknowledged"])
        assert seen[0]["data"]["exception_id"] == hot and seen[0]["data"]["by"] == "Ana"
    finally:
        live.close()
    assert ids(http, "open") == [alone, offline]
    assert ids(http, "acknowledged") == [hot]
    again = http.post(f"/api/v1/exceptions/{hot}/acknowledge", json={"note": "me too"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_acknowledged"
    assert "Ana" in again.json()["error"]["message"]
    # no body at all: who is the token's name
    r = http.post(f"/api/v1/exceptions/{offline}/acknowledge")
    assert r.status_code == 200 and r.json()["acknowledged"] == {
        "at": r.json()["acknowledged"]["at"], "by": "admin", "note": None}
    # resolution wins over an acknowledgement
    cleared(db, "sensor.excursion:temperature_c", 20, "s1")
    assert ids(http, "resolved") == [rest, hot] and ids(http, "acknowledged") == [offline]
    assert ids(http, "open,acknowledged") == [alone, offline]
    store(db, "device.online", 21, device_id="d7")
    assert ids(http, "open") == []
    assert query(db, "SELECT count(*) FROM events WHERE type = 'exception.acknowledged'") \
        == [(2,)]


def test_manual_exception_is_cleared_and_delivery_closes_watches(
        http: httpx.Client, settings: Settings) -> None:
    db = settings.database_url or ""
    ship = http.post("/api/v1/shipments", json={
        "reference": "Q-1", "device_id": "d9", "origin": {"lat": 52.0, "lon": 13.0},
        "destination": {"lat": 52.5, "lon": 13.4}}).json()
    deviation = store(db, "shipment.exception", 0, device_id="d9", shipment_id=ship["id"],
                      data={"kind": "route.deviation", "code": "route_deviation",
                            "source": "device"})
    r = http.patch(f"/api/v1/shipments/{ship['id']}", json={
        "exception": True, "exception_code": "damaged", "exception_reason": "pallet damaged"})
    assert r.status_code == 200, r.text
    [manual] = [i for i in http.get(f"/api/v1/exceptions?state=open&shipment_id={ship['id']}"
                                    ).json()["items"] if i["id"] != deviation]
    assert manual["type"] == "shipment.exception" and manual["reference"] == "Q-1"
    assert manual["code"] == "damaged"
    assert http.patch(f"/api/v1/shipments/{ship['id']}",
                      json={"exception": False}).status_code == 200
    assert http.patch(f"/api/v1/shipments/{ship['id']}",
                      json={"status": "delivered"}).status_code == 200
    resolved = http.get("/api/v1/exceptions?state=resolved").json()["items"]
    by_id = {i["id"]: i["resolved"]["type"] for i in resolved}
    # the clear-all names every open kind of the shipment's table; the detector's row was
    # only in the event log here, so delivery is what ends it
    assert by_id[manual["id"]] == "shipment.exception_cleared"
    assert by_id[deviation] in ("shipment.exception_cleared", "shipment.milestone")
    assert ids(http, "open") == []


def test_queue_input_is_checked(http: httpx.Client, settings: Settings) -> None:
    db = settings.database_url or ""
    for n in range(3):
        store(db, "device.offline", n, device_id=f"d{n}")  # devices with no shipment
    r = http.get("/api/v1/exceptions?state=closed")
    assert r.status_code == 422 and "closed" in r.json()["error"]["message"]
    first = http.get("/api/v1/exceptions?limit=2").json()
    rest = http.get(f"/api/v1/exceptions?limit=2&cursor={first['next_cursor']}").json()
    assert len(first["items"]) == 2 and len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert http.get("/api/v1/exceptions?cursor=bad!").status_code == 400
    enter = store(db, "geofence.enter", 5, device_id="d1")
    assert http.post(f"/api/v1/exceptions/{enter}/acknowledge").status_code == 404
    assert http.post("/api/v1/exceptions/evt_nope/acknowledge").status_code == 422
    first_id = first["items"][0]["id"]
    r = http.post(f"/api/v1/exceptions/{first_id}/acknowledge", json={"note": "x" * 2001})
    assert r.status_code == 422
    r = http.post(f"/api/v1/exceptions/{first_id}/acknowledge", json={"bogus": 1})
    assert r.status_code == 422
    assert ids(http, "acknowledged") == []  # nothing half-stored
    assert http.get("/api/v1/exceptions", headers={"Authorization": "Bearer no"}
                    ).status_code == 401
