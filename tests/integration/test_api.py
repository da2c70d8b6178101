"""The API against the real database and broker: REST, auth, errors, the fleet stream."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import websockets

from shiptrack.config import Settings
from tests.helpers import publish, query, running_api, running_ingest, wait_for

AUTH = {"Authorization": "Bearer test-admin-token"}
NOW = datetime.now(UTC).replace(microsecond=0)


def fix_json(sec: int, lat: float, lon: float) -> bytes:
    ts = (NOW - timedelta(minutes=5) + timedelta(seconds=sec)).isoformat()
    return json.dumps({"ts": ts, "lat": lat, "lon": lon, "speed": 5.0, "heading": 90}).encode()


def topic(settings: Settings, device: str) -> str:
    return f"{settings.mqtt_topic_prefix}shiptrack/v1/devices/{device}/position"


def test_health_auth_and_devices(settings: Settings) -> None:
    with running_ingest(settings), running_api(settings) as base:
        publish(settings.mqtt_url or "", [(topic(settings, f"dev-{i}"), fix_json(i, 50 + i, 8))
                                          for i in range(3)])
        assert settings.database_url
        wait_for(lambda: query(settings.database_url or "", "SELECT count(*) FROM devices")[0][0]
                 == 3)
        with httpx.Client(base_url=base) as http:
            assert http.get("/healthz").json() == {"status": "ok", "checks": {}}
            ready = http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"] == {
                "database": "ok", "broker": "ok", "schema": "ok"}
            r = http.get("/api/v1/devices")
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
            r = http.get("/api/v1/devices", headers={"Authorization": "Bearer nope"})
            assert r.status_code == 401
            page1 = http.get("/api/v1/devices?limit=2", headers=AUTH).json()
            assert [d["device_id"] for d in page1["items"]] == ["dev-0", "dev-1"]
            assert page1["items"][1]["last_position"]["lat"] == 51
            page2 = http.get(f"/api/v1/devices?limit=2&cursor={page1['next_cursor']}",
                             headers=AUTH).json()
            assert [d["device_id"] for d in page2["items"]] == ["dev-2"]
            assert page2["next_cursor"] is None
            one = http.get("/api/v1/devices/dev-2", headers=AUTH).json()
            assert one["last_position"]["speed"] == 5.0
            assert http.get("/api/v1/devices/nope", headers=AUTH).status_code == 404
            bad = http.get("/api/v1/devices?limit=abc", headers=AUTH)
            assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid"
            bad = http.get("/api/v1/devices?cursor=%%%", headers=AUTH)
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_cursor"
            assert "/api/v1/devices" in http.get("/openapi.json").json()["paths"]
            assert "shiptrack_ingest_fixes_stored_total" in http.get("/metrics").text


async def _recv_type(ws: websockets.ClientConnection, kind: str, wait: float = 10,
                     device: str | None = None) -> dict[str, Any]:
    """The next message of ``kind`` (and ``device``); others are skipped."""
    async def loop() -> dict[str, Any]:
        while True:
            msg: dict[str, Any] = json.loads(await ws.recv())
            if msg["type"] == kind and (device is None or msg.get("device_id") == device):
                return msg
    return await asyncio.wait_for(loop(), wait)


def test_fleet_stream_snapshot_then_positions_and_filters(settings: Settings) -> None:
    mqtt_url = settings.mqtt_url or ""

    async def scenario(base: str) -> None:
        ws_url = base.replace("http", "ws") + "/ws/fleet"
        with pytest.raises(websockets.InvalidStatus):
            async with websockets.connect(ws_url):
                pass
        async with websockets.connect(ws_url + "?token=test-admin-token") as ws:
            snap = await _recv_type(ws, "snapshot")
            assert [d["device_id"] for d in snap["devices"]] == ["a"]
            await asyncio.to_thread(publish, mqtt_url, [(topic(settings, "b"),
                                                          fix_json(10, 10.0, 20.0))])
            pos = await _recv_type(ws, "position", device="b")
            assert (pos["device_id"], pos["lat"], pos["lon"], pos["speed"]) == (
                "b", 10.0, 20.0, 5.0)
            await ws.send("not json")
            err = await _recv_type(ws, "error")
            assert err["error"]["code"] == "bad_message"
            await ws.send(json.dumps({"type": "subscribe", "bbox": [19, 9, 21, 11]}))
            snap = await _recv_type(ws, "snapshot")
            assert [d["device_id"] for d in snap["devices"]] == ["b"]
            await asyncio.to_thread(publish, mqtt_url, [
                (topic(settings, "a"), fix_json(20, 1.0001, 1.0)),
                (topic(settings, "b"), fix_json(20, 10.001, 20.0)),
            ])
            pos = await _recv_type(ws, "position")  # "a" is outside the bbox
            assert pos["device_id"] == "b" and pos["lat"] == 10.001
        headers = {"Authorization": "Bearer test-admin-token"}
        async with websockets.connect(ws_url, additional_headers=headers) as ws:
            snap = await _recv_type(ws, "snapshot")
            assert {d["device_id"] for d in snap["devices"]} == {"a", "b"}

    with running_ingest(settings), running_api(settings) as base:
        publish(mqtt_url, [(topic(settings, "a"), fix_json(0, 1.0, 1.0))])
        wait_for(lambda: query(settings.database_url or "", "SELECT count(*) FROM devices")[0][0]
                 == 1)
        asyncio.run(scenario(base))
