"""Public tracking with tracking tokens: one shipment's state and stream, nothing else,
positions only while under way, and 404s that take as long as answers."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from api import routes_track, ws_track
from api.routes_track import at_least
from shiptrack.config import Settings
from tests.helpers import publish, query, running_api
from tests.integration.test_streams import fix, live, next_is, next_of

NOW = datetime.now(UTC).replace(microsecond=0)


def add_shipment(db: str, ref: str, device: str, status: str = "created",
                 delivered_at: datetime | None = None) -> tuple[str, str]:
    sid, token = f"shp_{ref}", secrets.token_urlsafe(24)
    query(db, "INSERT INTO shipments (id, reference, device_id, tracking_token, origin,"
              " destination, status, delivered_at, eta, remaining_m) VALUES (%s, %s, %s, %s,"
              " %s, %s, %s, %s, %s, 1000.0) RETURNING 1",
          (sid, ref, device, token, json.dumps({"lat": 52.5, "lon": 13.4, "radius_m": 200}),
           json.dumps({"lat": 48.1, "lon": 11.6, "radius_m": 200}), status, delivered_at,
           NOW + timedelta(hours=3)))
    milestone(db, sid, "created", NOW - timedelta(hours=2))
    return sid, token


def milestone(db: str, sid: str, kind: str, ts: datetime) -> None:
    query(db, "INSERT INTO shipment_milestones (shipment_id, kind, ts, source)"
              " VALUES (%s, %s, %s, 'geofence') RETURNING 1", (sid, kind, ts))
    query(db, "UPDATE shipments SET status = %s, delivered_at = CASE WHEN %s = 'delivered'"
              " THEN %s END WHERE id = %s RETURNING 1", (kind, kind, ts, sid))


def set_device(db: str, device: str, ts: datetime, lat: float = 51.0) -> None:
    query(db, "INSERT INTO devices (device_id, last_ts, lat, lon) VALUES (%s, %s, %s, 12.0)"
              " ON CONFLICT (device_id) DO UPDATE SET last_ts = excluded.last_ts,"
              " lat = excluded.lat RETURNING 1", (device, ts, lat))


def test_rest_state_positions_only_under_way_and_404s(settings: Settings) -> None:
    db = settings.database_url or ""
    set_device(db, "truck-1", NOW - timedelta(minutes=1))
    sid, token = add_shipment(db, "ORD-1", "truck-1")
    _, other = add_shipment(db, "ORD-2", "truck-2")
    _, old = add_shipment(db, "ORD-3", "truck-1")
    milestone(db, "shp_ORD-3", "delivered", NOW - timedelta(days=30))
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        state = http.get(f"/api/v1/track/{token}").json()
        assert state["id"] == sid and state["reference"] == "ORD-1"
        assert state["status"] == "created" and state["last_position"] is None
        assert [m["kind"] for m in state["milestones"]] == ["created"]
        assert state["origin"] == {"lat": 52.5, "lon": 13.4} and state["remaining_m"] == 1000
        assert "device_id" not in state and "tracking_token" not in state

        milestone(db, sid, "picked_up", NOW - timedelta(minutes=30))
        pos = http.get(f"/api/v1/track/{token}").json()["last_position"]
        assert pos["lat"] == 51.0
        set_device(db, "truck-1", NOW - timedelta(hours=1))  # a fix from before the pickup
        assert http.get(f"/api/v1/track/{token}").json()["last_position"] is None
        set_device(db, "truck-1", NOW)
        milestone(db, sid, "delivered", NOW)
        state = http.get(f"/api/v1/track/{token}").json()
        assert state["status"] == "delivered" and state["last_position"] is None
        assert state["delivered_at"] is not None

        assert http.get(f"/api/v1/track/{other}").json()["reference"] == "ORD-2"
        for bad in (old, "nope", token[:-1], "x" * 300, "a%00b", "a.b~c", "%C3%A9"):
            r = http.get(f"/api/v1/track/{bad}")
            assert r.status_code in (404, 422), bad
            assert r.json()["error"]["code"] in ("not_found", "invalid")
        assert http.get("/api/v1/track/nope").status_code == 404

        # a tracking token is no bearer token
        for url in ("/api/v1/devices", "/api/v1/tokens", "/api/v1/devices/truck-1/track"):
            assert http.get(url, headers={"Authorization": f"Bearer {token}"}
                            ).status_code == 401


def test_every_answer_found_or_not_waits_out_the_floor(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # an unknown token cannot be told from a known one by timing: both answers (REST and
    # stream) await the same floor after the one lookup. Which answers await it is asserted
    # here; how long it takes is at_least's arithmetic, tested below.
    db = settings.database_url or ""
    set_device(db, "truck-1", NOW)
    sid, token = add_shipment(db, "ORD-1", "truck-1")
    milestone(db, sid, "picked_up", NOW - timedelta(minutes=5))
    floors: list[float] = []

    async def recording(started: float, floor: float = routes_track.TIMING_FLOOR_S) -> None:
        floors.append(floor)
        await at_least(started, floor)

    monkeypatch.setattr(routes_track, "at_least", recording)
    monkeypatch.setattr(ws_track, "at_least", recording)
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        for url, status in ((f"/api/v1/track/{token}", 200),
                            (f"/api/v1/track/{secrets.token_urlsafe(24)}", 404),
                            ("/api/v1/track/a.b~c", 404)):
            before = len(floors)
            assert http.get(url).status_code == status, url
            assert floors[before:] == [routes_track.TIMING_FLOOR_S], url

        async def streams() -> None:
            url = base.replace("http", "ws") + "/ws/track/"
            for path, first in ((token, "snapshot"), ("unknown-token", "error")):
                before = len(floors)
                async with websockets.connect(url + path, compression=None) as ws:
                    assert (await next_of(ws, first))["type"] == first
                assert floors[before:] == [routes_track.TIMING_FLOOR_S], path

        asyncio.run(streams())


async def test_at_least_sleeps_the_rest_of_the_floor(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(routes_track, "time", SimpleNamespace(monotonic=lambda: 100.0))
    monkeypatch.setattr(routes_track, "asyncio", SimpleNamespace(sleep=sleep))
    await at_least(99.99)  # 10 ms spent: 20 ms to go
    await at_least(99.0)  # a slow answer: no extra wait
    await at_least(100.0, floor=0.5)
    assert slept == [pytest.approx(0.02), 0.0, 0.5]


def test_track_stream_one_shipment_only(settings: Settings) -> None:
    db = settings.database_url or ""
    set_device(db, "truck-1", NOW - timedelta(minutes=1))
    sid, token = add_shipment(db, "ORD-1", "truck-1")
    other_sid, _ = add_shipment(db, "ORD-2", "truck-2")

    def event(kind: str, shipment: str | None, device: str) -> dict[str, Any]:
        return {"id": secrets.token_hex(6), "type": kind, "ts": NOW.isoformat(),
                "device_id": device, "shipment_id": shipment, "geofence_id": None,
                "data": {}}

    async def send(*messages: tuple[str, bytes]) -> None:
        await asyncio.to_thread(publish, settings.mqtt_url or "", list(messages))

    def sentinel(remaining_m: float) -> tuple[str, bytes]:
        """An ETA of the shipment: its stream shows it whatever the status."""
        return live(settings, "eta", {"shipment_id": sid, "device_id": "truck-1",
                                      "eta": NOW.isoformat(), "remaining_m": remaining_m})

    async def shows_truck(ws: ClientConnection, shown: bool) -> None:
        """Wait until the stream has applied the shipment's new status: a probe position
        of the truck, then a sentinel, until the probe is shown (or not) as it must be."""
        for probe in range(100):
            await send(live(settings, "positions", [fix("truck-1", 40 + probe / 1000, 12)]),
                       sentinel(-probe))
            first = json.loads(await asyncio.wait_for(ws.recv(), 5.0))
            if first["type"] == "position":
                await next_is(ws, "eta", remaining_m=-probe)
            if (first["type"] == "position") == shown:
                return
        pytest.fail(f"the truck's positions are still {'hidden' if shown else 'shown'}")

    async def scenario(base: str) -> None:
        url = base.replace("http", "ws") + "/ws/track/"
        async with websockets.connect(url + "nope", compression=None) as ws:
            err = await next_of(ws, "error")
            assert err["error"]["code"] == "not_found"
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 4404
        async with websockets.connect(url + token, compression=None) as ws:
            snap = await next_of(ws, "snapshot")
            assert snap["devices"] == [] and snap["shipment"]["status"] == "created"
            await send(live(settings, "positions", [fix("truck-1", 51.1, 12.0)]),
                       sentinel(1.0))
            await next_is(ws, "eta", remaining_m=1.0)  # not picked up yet: no position
            milestone(db, sid, "picked_up", NOW)
            await send(live(settings, "events", event("shipment.milestone", sid, "truck-1")))
            got = await next_of(ws, "event")
            assert got["event"]["shipment_id"] == sid
            await shows_truck(ws, True)  # the stream has read the shipment again
            await send(live(settings, "positions", [fix("truck-2", 1, 1),
                                                    fix("truck-1", 51.2, 12)]),
                       live(settings, "eta", {"shipment_id": other_sid, "device_id": "truck-2",
                                              "eta": NOW.isoformat()}),
                       live(settings, "events", event("geofence.enter", None, "truck-1")),
                       live(settings, "events", event("shipment.at_risk", other_sid, "truck-2")),
                       live(settings, "eta", {"shipment_id": sid, "device_id": "truck-1",
                                              "eta": NOW.isoformat(), "remaining_m": 5.0}))
            pos = await next_of(ws, "position")
            assert pos["device_id"] == "truck-1" and pos["lat"] == 51.2
            eta = await next_of(ws, "eta")
            assert eta["shipment_id"] == sid
            await send(sentinel(2.0))  # nothing of the other shipment or device, no fence event
            await next_is(ws, "eta", remaining_m=2.0)
            await ws.send('{"type": "subscribe", "devices": ["truck-2"]}')
            assert (await next_of(ws, "error"))["error"]["code"] == "bad_message"
            await ws.send('{"type": "ping"}')
            await next_of(ws, "pong")

            milestone(db, sid, "delivered", NOW)
            await send(live(settings, "events", event("shipment.milestone", sid, "truck-1")))
            await next_of(ws, "event")
            await shows_truck(ws, False)  # delivered: the device is private again
            await send(live(settings, "positions", [fix("truck-1", 51.3, 12.0)]), sentinel(3.0))
            await next_is(ws, "eta", remaining_m=3.0)

    with running_api(settings) as base:
        asyncio.run(scenario(base))


def test_open_exceptions_show_with_their_reasons(settings: Settings) -> None:
    db = settings.database_url or ""
    sid, token = add_shipment(db, "ORD-1", "truck-1")
    query(db, "INSERT INTO shipment_exceptions (shipment_id, kind, since, reason) VALUES"
              " (%s, 'device.offline', %s, 'no position for 15 min') RETURNING 1", (sid, NOW))
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        state = http.get(f"/api/v1/track/{token}").json()
        assert state["exception"] is True
        assert state["exception_reason"] == "no position for 15 min"
