"""Carrier updates against the real database and broker: EasyPost and AfterShip pushes in
their own formats (tests/fixtures/carriers), signatures, repeats, unknown numbers, one
timeline with a device of ours, and karrio polling a local carrier API."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from api.carrier_poller import CarrierPoller
from shiptrack.carriers.polling import accounts
from shiptrack.carriers.updates import sign_aftership, sign_easypost
from shiptrack.config import Settings
from tests.helpers import publish, query, running_api, running_ingest, wait_for
from tests.integration.test_tracking import fast, iso, topic
from tests.integration.test_tracking_api import AUTH, LiveEvents

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "carriers"
SECRET = "whsec-carrier-test"
DEST = {"lat": 30.27, "lon": -97.74}


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


@pytest.fixture
def signed(settings: Settings) -> Settings:
    return settings.model_copy(update={"carrier_secret_easypost": SECRET,
                                       "carrier_secret_aftership": SECRET})


@pytest.fixture
def http(signed: Settings) -> Iterator[httpx.Client]:
    with running_api(signed) as base, httpx.Client(base_url=base, headers=AUTH,
                                                   timeout=10) as client:
        yield client


def create(http: httpx.Client, db: str, since: datetime, **fields: Any) -> dict[str, Any]:
    """A shipment, created (its ``created`` milestone) at ``since``."""
    r = http.post("/api/v1/shipments", json={"reference": fields.pop("reference", "R-1"),
                                              "destination": DEST, **fields})
    assert r.status_code == 201, r.text
    ship: dict[str, Any] = r.json()
    query(db, "UPDATE shipment_milestones SET ts = %s WHERE shipment_id = %s AND kind ="
              " 'created' RETURNING 1", (since, ship["id"]))
    query(db, "UPDATE shipments SET created_at = %s WHERE id = %s RETURNING 1",
          (since, ship["id"]))
    return ship


def push_easypost(http: httpx.Client, payload: dict[str, Any],
                  secret: str | None = SECRET) -> httpx.Response:
    raw = body(payload)
    headers = {} if secret is None else {"X-Hmac-Signature": sign_easypost(secret, raw)}
    return http.post("/api/v1/carriers/easypost/events", content=raw,
                     headers={"Content-Type": "application/json", **headers})


def push_aftership(http: httpx.Client, payload: dict[str, Any],
                   secret: str | None = SECRET) -> httpx.Response:
    raw = body(payload)
    headers = {} if secret is None else {"aftership-hmac-sha256": sign_aftership(secret, raw)}
    return http.post("/api/v1/carriers/aftership/events", content=raw,
                     headers={"Content-Type": "application/json", **headers})


def timeline(http: httpx.Client, sid: str) -> list[tuple[str, str, str]]:
    ship = http.get(f"/api/v1/shipments/{sid}").json()
    return [(m["kind"], m["source"], m["ts"]) for m in ship["milestones"]]


def counts(db: str) -> tuple[int, int, int]:
    return (int(query(db, "SELECT count(*) FROM events")[0][0]),
            int(query(db, "SELECT count(*) FROM shipment_milestones")[0][0]),
            int(query(db, "SELECT count(*) FROM carrier_checkpoints")[0][0]))


def test_easypost_push_signed_once_and_unknown(http: httpx.Client, signed: Settings) -> None:
    db = signed.database_url or ""
    ship = create(http, db, datetime(2026, 11, 25, tzinfo=UTC), carrier="usps",
                  carrier_tracking_number="EZ4000000004")
    assert ship["device_id"] is None and ship["origin"] is None
    event = fixture("easypost_tracker_updated.json")
    before = counts(db)
    # unsigned, wrongly signed, signed with another secret: 401, nothing stored
    for secret in (None, "wrong"):
        r = push_easypost(http, event, secret)
        assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature"
    raw = body(event)
    r = http.post("/api/v1/carriers/easypost/events", content=raw + b" ", headers={
        "X-Hmac-Signature": sign_easypost(SECRET, raw)})  # the body changed after signing
    assert r.status_code == 401
    assert counts(db) == before

    r = push_easypost(http, event)
    assert r.status_code == 200, r.text
    assert r.json() == {"tracking_number": "EZ4000000004", "shipments": [ship["id"]],
                        "new_checkpoints": 4, "events": 2, "ignored": None}
    state = http.get(f"/api/v1/shipments/{ship['id']}").json()
    assert state["status"] == "out_for_delivery"
    assert state["carrier_eta"] == "2026-11-27T18:00:00Z"
    assert [(m["kind"], m["source"], m["ts"]) for m in state["milestones"]] == [
        ("created", "api", "2026-11-25T00:00:00Z"),
        ("in_transit", "carrier", "2026-11-25T18:40:00Z"),
        ("out_for_delivery", "carrier", "2026-11-27T07:10:00Z")]
    assert state["milestones"][1]["data"]["message"] == "Arrived at USPS Origin Facility"
    events = http.get(f"/api/v1/events?shipment_id={ship['id']}&order=asc").json()["items"]
    assert [(e["type"], e["data"]["kind"], e["data"]["source"]) for e in events] == [
        ("shipment.milestone", "created", "api"),
        ("shipment.milestone", "in_transit", "carrier"),
        ("shipment.milestone", "out_for_delivery", "carrier")]

    # the same push again, and again as a tracker.created: nothing changes
    after = counts(db)
    r = push_easypost(http, event)
    assert (r.status_code, r.json()["new_checkpoints"], r.json()["events"]) == (200, 0, 0)
    r = push_easypost(http, {**event, "id": "evt_other", "description": "tracker.created"})
    assert (r.status_code, r.json()["new_checkpoints"]) == (200, 0)
    assert counts(db) == after
    assert http.get(f"/api/v1/shipments/{ship['id']}").json() == state

    # a number no shipment has: accepted, ignored
    other = copy.deepcopy(event)
    other["result"]["tracking_code"] = "EZ-NOBODY"
    r = push_easypost(http, other)
    assert r.status_code == 202 and r.json()["shipments"] == []
    assert counts(db) == after
    # bad input: 422, nothing stored
    for raw in (b"not json", b'{"result": {"status": "delivered"}}'):
        r = http.post("/api/v1/carriers/easypost/events", content=raw,
                      headers={"X-Hmac-Signature": sign_easypost(SECRET, raw)})
        assert r.status_code == 422 and r.json()["error"]["code"] in ("bad_json", "bad_update")
    assert counts(db) == after


def test_aftership_exception_codes_and_the_customer_page(http: httpx.Client,
                                                         signed: Settings) -> None:
    db = signed.database_url or ""
    ship = create(http, db, datetime(2026, 11, 23, tzinfo=UTC), carrier="dhl",
                  carrier_tracking_number="JD014600006281230702", reference="PO-2026-0042")
    hook = fixture("aftership_tracking_update.json")
    assert push_aftership(http, hook, None).status_code == 401
    live = LiveEvents(signed)
    try:
        r = push_aftership(http, hook)
        assert r.status_code == 200 and r.json()["new_checkpoints"] == 3
        state = http.get(f"/api/v1/shipments/{ship['id']}").json()
        assert (state["status"], state["exception"], state["exception_code"]) == (
            "in_transit", True, "customs_hold")
        assert state["exception_reason"] == "Clearance delay - import"
        assert [(x["kind"], x["code"]) for x in state["exceptions"]] == [("carrier",
                                                                          "customs_hold")]
        found = http.get("/api/v1/shipments?exception_code=customs_hold").json()["items"]
        assert [s["id"] for s in found] == [ship["id"]]
        assert http.get("/api/v1/shipments?exception_code=lost").json()["items"] == []
        assert http.get("/api/v1/shipments?exception_code=nope").status_code == 422
        public = httpx.get(f"{http.base_url}/api/v1/track/{ship['tracking_token']}").json()
        assert (public["status"], public["exception_code"], public["carrier_eta"],
                public["carrier"]) == ("in_transit", "customs_hold", "2026-12-02T12:00:00Z",
                                       "dhl")

        # customs clears, a failed attempt, at a pickup point, delivered
        more = copy.deepcopy(hook)
        base = hook["msg"]["checkpoints"][-1]
        for when, tag, sub, message in [
            ("2026-11-28T09:00:00+01:00", "InTransit", "InTransit_008", "Cleared"),
            ("2026-11-29T08:00:00+01:00", "OutForDelivery", "OutForDelivery_001", "On van"),
            ("2026-11-29T14:00:00+01:00", "AttemptFail", "AttemptFail_002", "Not home"),
            ("2026-11-29T18:00:00+01:00", "AvailableForPickup", "AvailableForPickup_001",
             "At the Packstation"),
            ("2026-11-30T11:00:00+01:00", "Delivered", "Delivered_002", "Collected")]:
            more["msg"]["checkpoints"].append({**base, "checkpoint_time": when, "tag": tag,
                                               "subtag": sub, "message": message})
        r = push_aftership(http, more)
        assert r.status_code == 200 and r.json()["new_checkpoints"] == 5
        state = http.get(f"/api/v1/shipments/{ship['id']}").json()
        assert (state["status"], state["exception"], state["exception_code"]) == (
            "delivered", False, None)
        assert [(m["kind"], m["ts"]) for m in state["milestones"]] == [
            ("created", "2026-11-23T00:00:00Z"), ("picked_up", "2026-11-24T02:55:00Z"),
            ("in_transit", "2026-11-24T20:31:00Z"), ("out_for_delivery", "2026-11-29T07:00:00Z"),
            ("attempt_failed", "2026-11-29T13:00:00Z"),
            ("available_for_pickup", "2026-11-29T17:00:00Z"),
            ("delivered", "2026-11-30T10:00:00Z")]
        events = http.get(f"/api/v1/events?shipment_id={ship['id']}&order=asc").json()["items"]
        kinds = [(e["type"], e["data"].get("kind"), e["data"].get("code")) for e in events]
        assert ("shipment.exception", "carrier", "customs_hold") in kinds
        cleared = [e for e in events if e["type"] == "shipment.exception_cleared"]
        assert [c["data"]["cleared"][0]["code"] for c in cleared] == ["customs_hold"]
        assert all(e["data"]["source"] == "carrier" for e in events[1:])
        ids = {e["id"] for e in events[1:]}
        wait_for(lambda: ids <= {e["id"] for e in live.items})  # published live
        assert push_aftership(http, more).json()["new_checkpoints"] == 0
    finally:
        live.close()


def test_a_truck_then_a_carrier_in_one_timeline(settings: Settings) -> None:
    """The truck takes it from the origin (device milestones); DHL's pushes take it on.
    Forward only and in time order, whoever says what and whenever they say it."""
    db = settings.database_url or ""
    t0 = (datetime.now(UTC) - timedelta(hours=3)).replace(microsecond=0)
    with running_api(settings) as base, httpx.Client(base_url=base, headers=AUTH,
                                                     timeout=10) as http:
        ship = create(http, db, t0 - timedelta(hours=1), device_id="truck-c",
                      origin={"lat": 52.0, "lon": 13.0, "radius_m": 300},
                      carrier="dhl", carrier_tracking_number="1234567890")
        fixes = [{"ts": iso(t0 + timedelta(seconds=30 * i)), "lat": 52.0, "lon": 13.0}
                 for i in range(20)]
        fixes += [{"ts": iso(t0 + timedelta(seconds=600 + 30 * i)), "lat": 52.0,
                   "lon": 13.0 + 0.005 * i} for i in range(1, 11)]
        with running_ingest(fast(settings)):
            publish(settings.mqtt_url or "", [(topic(settings, "truck-c"),
                                               json.dumps(fixes).encode())])
            wait_for(lambda: [k for k, _, _ in timeline(http, ship["id"])] == [
                "created", "picked_up", "in_transit"])
            device_legs = timeline(http, ship["id"])
            in_transit_at = datetime.fromisoformat(device_legs[-1][2])

            def at(minutes: float) -> str:
                return (t0 + timedelta(minutes=minutes)).isoformat()

            hook = fixture("aftership_tracking_update.json")
            hook["msg"]["tracking_number"] = "1234567890"
            base_cp = hook["msg"]["checkpoints"][0]
            hook["msg"]["checkpoints"] = [{**base_cp, "checkpoint_time": when, "tag": tag,
                                           "subtag": sub, "message": sub}
                                          for when, tag, sub in [
                (at(5), "InTransit", "InTransit_002"),  # before the truck left: no
                (at(8), "OutForDelivery", "OutForDelivery_001"),  # early: dated after
                (at(60), "AttemptFail", "AttemptFail_001"),
                (at(90), "OutForDelivery", "OutForDelivery_001"),  # the second attempt
                (at(100), "InTransit", "InTransit_003"),  # not backwards
                (at(120), "Delivered", "Delivered_001")]]
            r = push_aftership(http, hook, None)
            assert r.status_code == 200 and r.json()["new_checkpoints"] == 6
            legs = timeline(http, ship["id"])
            assert [(k, s) for k, s, _ in legs] == [
                ("created", "api"), ("picked_up", "device"), ("in_transit", "device"),
                ("out_for_delivery", "carrier"), ("attempt_failed", "carrier"),
                ("out_for_delivery", "carrier"), ("delivered", "carrier")]
            times = [datetime.fromisoformat(ts) for _, _, ts in legs]
            assert times == sorted(times)
            assert times[3] == in_transit_at  # the early report dated no earlier
            assert times[4:] == [t0 + timedelta(minutes=m) for m in (60, 90, 120)]
            # the truck's later fixes change nothing now: delivered is final
            late = [{"ts": iso(t0 + timedelta(minutes=130 + i)), "lat": 52.0,
                     "lon": 13.1 + 0.01 * i} for i in range(5)]
            publish(settings.mqtt_url or "", [(topic(settings, "truck-c"),
                                               json.dumps(late).encode())])
            wait_for(lambda: query(db, "SELECT count(*) FROM positions")[0][0] == 35)
        assert timeline(http, ship["id"]) == legs
        assert http.patch(f"/api/v1/shipments/{ship['id']}",
                          json={"status": "in_transit"}).json()["error"]["code"] == \
            "status_backwards"


class CarrierApi:
    """A local stand-in for DHL's unified tracking API: the recorded answer for the known
    number, 404 JSON for others, 500 for ``FAIL``."""

    def __init__(self) -> None:
        answer = (FIXTURES / "dhl_universal_tracking.json").read_bytes()
        self.seen: list[tuple[str, str | None]] = []
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append((self.path, self.headers.get("DHL-API-Key")))
                if "00340434292135100186" in self.path:
                    status, payload = 200, answer
                elif "FAIL" in self.path:
                    status, payload = 500, b"oops"
                else:
                    status, payload = 404, json.dumps({
                        "title": "No shipment with given tracking number found.",
                        "status": 404, "detail": "no shipment"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_karrio_polls_a_local_carrier_api(settings: Settings) -> None:
    db = settings.database_url or ""
    carrier = CarrierApi()
    try:
        configured = settings.model_copy(update={"carrier_accounts": {"dhl": {
            "connector": "dhl_universal", "consumer_key": "key-1", "consumer_secret": "s",
            "server_url": carrier.url, "requests_per_minute": 600}}})
        with running_api(settings) as base, httpx.Client(base_url=base, headers=AUTH,
                                                         timeout=10) as http:
            ship = create(http, db, datetime(2026, 11, 25, tzinfo=UTC), carrier="dhl",
                          carrier_tracking_number="00340434292135100186")
            failing = create(http, db, datetime(2026, 11, 25, tzinfo=UTC), carrier="dhl",
                             carrier_tracking_number="FAIL-1", reference="R-2")
            create(http, db, datetime(2026, 11, 25, tzinfo=UTC), carrier="ups",
                   carrier_tracking_number="1Z999", reference="R-3")  # no account: not asked
            now = datetime.now(UTC).replace(microsecond=0)

            async def rounds() -> list[int]:
                pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                    db, min_size=1, max_size=2, open=False, kwargs={"autocommit": True})
                await pool.open()
                try:
                    poller = CarrierPoller(pool, configured,
                                           accounts(configured.carrier_accounts))
                    return [await poller.poll_once(now), await poller.poll_once(now)]
                finally:
                    await pool.close()

            assert asyncio.run(rounds()) == [2, 0]  # the second round: nothing due
            assert sorted(carrier.seen) == [
                ("/track/shipments?language=en&trackingNumber=00340434292135100186", "key-1"),
                ("/track/shipments?language=en&trackingNumber=FAIL-1", "key-1")]
            state = http.get(f"/api/v1/shipments/{ship['id']}").json()
            assert [(m["kind"], m["source"], m["ts"]) for m in state["milestones"]] == [
                ("created", "api", "2026-11-25T00:00:00Z"),
                ("in_transit", "carrier", "2026-11-26T05:12:00Z"),
                ("attempt_failed", "carrier", "2026-11-26T16:40:00Z"),
                ("delivered", "carrier", "2026-11-27T10:22:00Z")]
            assert state["carrier_eta"] == "2026-11-27T12:00:00Z"
            assert query(db, "SELECT provider, count(*) FROM carrier_checkpoints"
                             " GROUP BY provider") == [("karrio:dhl_universal", 3)]
            # the failure backs off (60 s); the delivered one is final: never polled again
            assert query(db, "SELECT carrier_poll_failures, carrier_poll_at FROM shipments"
                             " WHERE id = %s", (failing["id"],)) == [
                (1, now + timedelta(seconds=60))]
            assert http.get(f"/api/v1/shipments/{failing['id']}").json()["status"] == "created"
    finally:
        carrier.close()
