"""Hostile input at the API's doors, against a real server (uvicorn), broker and
database: the body limit before auth, NUL / invalid Unicode anywhere, the OwnTracks
door, and the live feed surviving poison on its topics with a real WebSocket client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import websockets

from shiptrack.config import Settings
from tests.helpers import publish, query, running_api

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = 64 * 1024


@pytest.fixture
def api(settings: Settings) -> Iterator[str]:
    with running_api(settings.model_copy(update={"max_body_bytes": LIMIT})) as base:
        yield base


def raw_http(base: str, request: bytes, send_body: bytes = b"") -> bytes:
    """One request on a plain socket: the answer, read until the server closes or
    answers (the body may be left unsent: the server must answer without it)."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        if send_body:
            with contextlib.suppress(OSError):  # closed on us after answering: good
                sock.sendall(send_body)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def status_and_json(answer: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_declared_large_body_gets_413_before_auth_and_before_reading(api: str) -> None:
    # no token, a 150 MB Content-Length, and not one body byte sent: the answer is 413
    answer = raw_http(api, b"POST /api/v1/geofences HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 157286400\r\n\r\n")
    status, body = status_and_json(answer)
    assert status == 413
    assert body["error"]["code"] == "too_large"
    assert str(LIMIT) in body["error"]["message"]


@pytest.mark.parametrize("content_type", [b"application/json", b"application/octet-stream"])
def test_chunked_body_is_cut_off_at_the_limit(api: str, content_type: bytes) -> None:
    chunk = b"[" + b"1," * 8000  # 16 kB a chunk, never finished
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20))
    answer = raw_http(api, b"POST /api/v1/owntracks?u=a&d=b HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Type: " + content_type + b"\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n", chunks)
    status, body = status_and_json(answer)
    assert status == 413 and body["error"]["code"] == "too_large"


def test_a_body_within_the_limit_still_works(api: str) -> None:
    feature = {"type": "Feature", "properties": {"name": "Depot", "radius_m": 100},
               "geometry": {"type": "Point", "coordinates": [13.4, 52.5]}}
    r = httpx.post(f"{api}/api/v1/geofences", json=feature, headers=AUTH)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("path", [
    "/api/v1/devices?cursor=%00",
    "/api/v1/devices?limit=1&cursor=abc%00def",
    "/api/v1/events?device_id=a%00b",
    "/api/v1/events?since=%FF%FE",
    "/api/v1/devices/truck%001",
    "/api/v1/devices/%C3%28/track",
    "/api/v1/geofences/gf%00",
    "/api/v1/shipments/x%00",
    "/api/v1/track/tok%00en",
    "/api/v1/shipments?status=%00",
])
def test_nul_and_invalid_unicode_in_path_or_query_get_422(api: str, path: str) -> None:
    r = httpx.get(f"{api}{path}", headers=AUTH)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid"
    assert "NUL" in error["message"] or "UTF-8" in error["message"]


@pytest.mark.parametrize(("body", "where"), [
    (b'{"type": "Feature", "properties": {"name": "a\\u0000b", "radius_m": 5},'
     b' "geometry": {"type": "Point", "coordinates": [1, 2]}}', "$.properties.name"),
    (b'{"type": "Feature", "properties": {"name": "\\ud800", "radius_m": 5},'
     b' "geometry": {"type": "Point", "coordinates": [1, 2]}}', "$.properties.name"),
    (b'{"type": "Feature", "properties": {"na\\u0000me": "x"}}', "$.properties.na\\x00me"),
    (b'{"type": "Feature", "properties": {"name": "\xff"}}', "UTF-8"),
])
def test_nul_and_invalid_unicode_in_json_bodies_get_422(api: str, body: bytes,
                                                       where: str) -> None:
    r = httpx.post(f"{api}/api/v1/geofences", content=body,
                   headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert where in r.json()["error"]["message"]


def test_nul_in_a_shipment_reference_is_422_and_nothing_is_stored(api: str,
                                                                 settings: Settings) -> None:
    body = {"reference": "R\x00", "device_id": "d1", "origin": {"lat": 1, "lon": 2},
            "destination": {"lat": 2, "lon": 3}}
    r = httpx.post(f"{api}/api/v1/shipments", json=body, headers=AUTH)
    assert r.status_code == 422, r.text
    assert settings.database_url
    assert query(settings.database_url, "SELECT count(*) FROM shipments")[0][0] == 0


def test_owntracks_door_survives_poison(api: str, settings: Settings) -> None:
    url = f"{api}/api/v1/owntracks?u=jane&d=phone"
    for poison in (b"[" * 1000 + b"]" * 1000, b'{"_type": "location", "lat": NaN}',
                   b"\xff\xfe", b'{"_type": "location", "tst": ' + b"9" * 400 + b"}"):
        r = httpx.post(url, content=poison, headers={**AUTH, "Content-Type":
                                                    "application/json"})
        assert r.status_code in (200, 400, 422), (poison[:20], r.status_code, r.text)
        assert "error" in r.json() or r.json() == []
    good = {"_type": "location", "lat": 1.0, "lon": 2.0, "tst": 1795683000}
    assert httpx.post(url, json=good, headers=AUTH).json() == []


def test_live_feed_survives_poison_and_a_good_position_still_arrives(
        api: str, settings: Settings) -> None:
    prefix = settings.mqtt_topic_prefix
    positions = f"{prefix}shiptrack/v1/live/positions"
    poison = [b"[" * 1000 + b"]" * 1000, b'{"a":' * 1000 + b"1" + b"}" * 1000, b"\xff",
              b"NaN", json.dumps([{"device_id": "x", "lat": 10**400, "lon": 1}]).encode(),
              json.dumps([{"device_id": {"no": 1}, "lat": "a"}, 7, None]).encode(),
              b"1" + b"0" * 5000]
    good = [{"device_id": "after-poison", "ts": datetime.now(UTC).isoformat(), "lat": 1.5,
             "lon": 2.5}]

    async def scenario() -> dict[str, Any]:
        url = api.replace("http", "ws") + f"/ws/fleet?token={TOKEN}"
        async with websockets.connect(url, compression=None) as ws:
            assert json.loads(await ws.recv())["type"] == "snapshot"
            messages = [(t, p) for t in (positions, f"{prefix}shiptrack/v1/live/events",
                                         f"{prefix}shiptrack/v1/live/eta") for p in poison]
            await asyncio.to_thread(publish, settings.mqtt_url or "",
                                    [*messages, (positions, json.dumps(good).encode())])
            while True:
                msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if msg["type"] == "position":
                    return dict(msg)

    msg = asyncio.run(scenario())
    assert (msg["device_id"], msg["lat"], msg["lon"]) == ("after-poison", 1.5, 2.5)
    r = httpx.get(f"{api}/readyz")
    assert r.status_code == 200 and r.json()["checks"]["broker"] == "ok"


def test_live_feed_task_that_ends_is_restarted(settings: Settings) -> None:
    """Cancelled from outside (what an escaping error also does): ``connected`` (what
    /readyz reports) is False at once, and the feed comes back subscribed by itself."""
    from api.hub import Hub
    from api.live_feed import LiveFeed
    from shiptrack.mqtturl import parse_mqtt_url

    async def scenario() -> tuple[bool, bool, int]:
        feed = LiveFeed(parse_mqtt_url(settings.mqtt_url or ""), Hub(100, 5.0),
                        settings.mqtt_topic_prefix)
        feed.start()
        await until(lambda: feed.connected)
        task = feed._task
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)  # the cancellation is delivered
        await asyncio.wait([task])
        down = feed.connected
        await until(lambda: feed.connected)
        up, restarts = feed.connected, feed.restarts
        await feed.stop()
        return down, up, restarts

    down, up, restarts = asyncio.run(scenario())
    assert (down, up, restarts) == (False, True, 1)


async def until(condition: Any) -> None:
    for _ in range(500):  # 10 s at most
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met within 10 s")


def test_a_websocket_handshake_with_nul_in_its_query_is_refused(api: str) -> None:
    async def connect() -> None:
        url = api.replace("http", "ws") + f"/ws/fleet?token={TOKEN}&note=a%00b"
        async with websockets.connect(url, compression=None):
            pass

    with pytest.raises(websockets.InvalidStatus) as info:
        asyncio.run(connect())
    assert info.value.response.status_code == 403
