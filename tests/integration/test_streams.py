"""The WebSocket streams with real clients against a running server, fed through the
real broker's live topics: snapshot, deltas, filters, client errors, a stalled client,
reconnects, and the close on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from shiptrack.config import Settings
from shiptrack.embedded import free_port
from tests.helpers import publish, query, running_api, running_ingest, wait_for

TOKEN = "test-admin-token"
LONG_TOKEN = "test-admin-token-of-24-chars-at-least"  # what `shiptrack api` accepts
NOW = datetime.now(UTC).replace(microsecond=0)


def ws_url(base: str, path: str = "/ws/fleet") -> str:
    return base.replace("http", "ws") + path + (f"?token={TOKEN}" if path == "/ws/fleet" else "")


def add_device(db_url: str, device: str, lat: float, lon: float, ts: datetime = NOW) -> None:
    query(db_url, "INSERT INTO devices (device_id, last_ts, lat, lon, speed, heading)"
                  " VALUES (%s, %s, %s, %s, 3.0, 90.0) ON CONFLICT (device_id) DO UPDATE"
                  " SET last_ts = excluded.last_ts, lat = excluded.lat, lon = excluded.lon"
                  " RETURNING 1", (device, ts, lat, lon))


def live(settings: Settings, kind: str, payload: Any) -> tuple[str, bytes]:
    topic = f"{settings.mqtt_topic_prefix}shiptrack/v1/live/{kind}"
    return topic, json.dumps(payload).encode()


def fix(device: str, lat: float, lon: float, **extra: Any) -> dict[str, Any]:
    return {"device_id": device, "ts": NOW.isoformat(), "lat": lat, "lon": lon, **extra}


async def send_live(settings: Settings, *messages: tuple[str, bytes]) -> None:
    await asyncio.to_thread(publish, settings.mqtt_url or "", list(messages))


async def next_of(ws: ClientConnection, kind: str, wait: float = 5.0) -> dict[str, Any]:
    """The next message of ``kind``; other kinds are skipped."""
    async def loop() -> dict[str, Any]:
        while True:
            msg = json.loads(await ws.recv())
            if msg["type"] == kind:
                return dict(msg)
    return await asyncio.wait_for(loop(), wait)


async def next_is(ws: ClientConnection, kind: str, **fields: Any) -> dict[str, Any]:
    """The very next message, which must be of ``kind`` with ``fields``: a sentinel sent
    after messages the stream must not show. Had any of them passed, it would have come
    first: the API reads every live topic over one broker connection, and the broker and
    the hub keep the order of what was published (each publish here waits for its ack)."""
    msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5.0))
    assert msg["type"] == kind and all(msg.get(k) == v for k, v in fields.items()), (
        f"expected the {kind} sentinel {fields}, got {msg!r}")
    return msg


def test_snapshot_deltas_filters_and_client_errors(settings: Settings) -> None:
    assert settings.database_url
    add_device(settings.database_url, "a", 1.0, 1.0)
    add_device(settings.database_url, "b", 10.0, 20.0)

    async def scenario(base: str) -> None:
        async with websockets.connect(ws_url(base), compression=None) as ws:
            snap = await next_of(ws, "snapshot")
            assert [(d["device_id"], d["lat"]) for d in snap["devices"]] == [("a", 1), ("b", 10)]
            await send_live(settings, live(settings, "positions", [fix("a", 1.5, 1.0),
                                                                   fix("c", 5.0, 5.0)]))
            pos = await next_of(ws, "position")
            assert (pos["device_id"], pos["lat"], "speed" in pos) == (
                "a", 1.5, False)
            assert (await next_of(ws, "position"))["device_id"] == "c"
            event: dict[str, Any] = {"id": "ev1", "type": "geofence.enter", "ts": NOW.isoformat(),
                     "device_id": "b", "shipment_id": None, "geofence_id": "gf_1", "data": {}}
            await send_live(settings, live(settings, "events", event))
            got = await next_of(ws, "event")
            assert got["event"] == event
            await send_live(settings, live(settings, "eta", {
                "shipment_id": "s1", "device_id": "b", "eta": NOW.isoformat(),
                "eta_low": None, "eta_high": None, "remaining_m": 10.0, "at_risk": False}))
            eta = await next_of(ws, "eta")
            assert eta["shipment_id"] == "s1" and eta["remaining_m"] == 10.0

            bads: list[str | bytes] = [
                "not json", "[1, 2]", '{"type": "subscribe", "bbox": [1, 2]}',
                '{"type": "subscribe", "bbox": [0, 50, 10, 40]}',
                '{"type": "subscribe", "devices": "a"}', '{"type": "dance"}',
                '{"no": "type"}', b"\x00binary"]
            for bad in bads:
                await ws.send(bad)
                err = await next_of(ws, "error")
                assert err["error"]["code"] == "bad_message", bad
            await ws.send('{"type": "ping"}')
            await next_of(ws, "pong")

            await ws.send(json.dumps({"type": "subscribe", "devices": ["b"]}))
            snap = await next_of(ws, "snapshot")
            assert [d["device_id"] for d in snap["devices"]] == ["b"]
            await send_live(settings,
                            live(settings, "positions", [fix("a", 2.0, 1.0), fix("b", 11, 20)]),
                            live(settings, "events", {**event, "id": "ev2", "device_id": "a"}))
            pos = await next_of(ws, "position")
            assert pos["device_id"] == "b" and pos["lat"] == 11
            # a's position and a's event are filtered out: b's next one comes next
            await send_live(settings, live(settings, "positions", [fix("b", 11.5, 20)]))
            await next_is(ws, "position", device_id="b", lat=11.5)

            await ws.send(json.dumps({"type": "subscribe", "bbox": [0, 0, 3, 3]}))
            snap = await next_of(ws, "snapshot")
            assert [d["device_id"] for d in snap["devices"]] == ["a"]
            await send_live(settings, live(settings, "positions", [
                fix("b", 12, 20), fix("a", 2.5, 1.0), fix("b", 2, 2)]))
            two = [await next_of(ws, "position") for _ in range(2)]
            assert [(p["device_id"], p["lat"]) for p in two] == [("a", 2.5), ("b", 2)]

            await ws.send(json.dumps({"type": "subscribe"}))  # no narrowing: everything again
            assert len((await next_of(ws, "snapshot"))["devices"]) == 2

    with running_api(settings) as base:
        asyncio.run(scenario(base))


def metric(base: str, name: str) -> float:
    text = httpx.get(base + "/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


async def stalled_client(base: str) -> ClientConnection:
    """A stream client that never reads, behind a bounded receive buffer."""
    sock = socket.socket()  # a bounded receive buffer (set before connecting)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
    sock.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
    return await websockets.connect(ws_url(base), compression=None, sock=sock,
                                    max_queue=4, max_size=2**24)


async def flood(settings: Settings, count: int, pad: str) -> None:
    for i in range(0, count, 50):
        await send_live(settings, *[live(settings, "positions", [fix(
            f"d{j}", 1.0, 1.0, sensors={"n": j, "pad": pad})]) for j in range(i, i + 50)])


STALL_COUNT, STALL_PAD = 700, "x" * 16_000  # ~11 MB: more than the socket buffers hold


def test_a_stalled_client_never_delays_the_others(settings: Settings) -> None:
    """One client never reads; three others get every message while it is still
    connected (its stall limit is far away), so nothing waits for it."""
    patient = settings.model_copy(update={"ws_stall_seconds": 600})
    count = STALL_COUNT

    async def reader(base: str, got: list[int], ready: asyncio.Event) -> None:
        async with websockets.connect(ws_url(base), compression=None,
                                      max_size=2**24) as ws:
            await next_of(ws, "snapshot")
            ready.set()
            while len(got) < count:
                msg = json.loads(await ws.recv())
                if msg["type"] == "position":
                    got.append(msg["sensors"]["n"])

    async def scenario(base: str) -> None:
        staller = await stalled_client(base)
        received: list[list[int]] = [[], [], []]
        readies = [asyncio.Event() for _ in received]
        readers = [asyncio.create_task(reader(base, got, ok))
                   for got, ok in zip(received, readies, strict=True)]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 10)
        await flood(settings, count, STALL_PAD)
        await asyncio.wait_for(asyncio.gather(*readers), 60)
        assert all(got == list(range(count)) for got in received)
        assert staller.close_code is None  # still there, still not reading
        staller.transport.abort()  # no closing handshake behind 11 MB it never read
        await staller.wait_closed()

    with running_api(patient) as base:
        asyncio.run(scenario(base))


def test_a_client_behind_for_stall_s_is_closed_with_4008(settings: Settings) -> None:
    stall = settings.model_copy(update={"ws_stall_seconds": 1.5})

    async def scenario(base: str) -> None:
        closed_before = metric(base, 'shiptrack_ws_closed_total{code="4008"}')
        staller = await stalled_client(base)
        await flood(settings, STALL_COUNT, STALL_PAD)
        await asyncio.to_thread(wait_for, lambda: metric(
            base, 'shiptrack_ws_closed_total{code="4008"}') >= closed_before + 1, 10)
        code = None  # it reads again: what was sent, then the close frame
        try:
            async with asyncio.timeout(20):
                async for _ in staller:
                    pass
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
        code = code or (staller.close_code)
        assert code == 4008, code

    with running_api(stall) as base:
        asyncio.run(scenario(base))


def test_a_client_behind_gets_the_latest_position_not_every_one(settings: Settings) -> None:
    """Conflation, end to end: a client that does not read while one device moves 700
    times gets, when it reads again, what the sockets already held and then the device's
    latest position, not the ones in between; in order, ending at the last."""
    patient = settings.model_copy(update={"ws_stall_seconds": 60})
    count, pad = 700, "x" * 16_000

    async def scenario(base: str) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        sock.connect(("127.0.0.1", int(base.rsplit(":", 1)[1])))
        async with websockets.connect(ws_url(base), compression=None, sock=sock,
                                      max_queue=4, max_size=2**24) as ws:
            await next_of(ws, "snapshot")
            for i in range(0, count, 50):
                await send_live(settings, *[live(settings, "positions", [
                    fix("c", 1.0, 1.0, sensors={"n": j, "pad": pad})]) for j in range(i, i + 50)])
            await asyncio.sleep(1.0)
            got: list[int] = []
            while not got or got[-1] != count - 1:
                got.append((await next_of(ws, "position"))["sensors"]["n"])
            assert got == sorted(got) and len(set(got)) == len(got)
            assert len(got) < count, "nothing was conflated"
            await send_live(settings, live(settings, "positions", [
                fix("c", 1.0, 1.0, sensors={"n": count})]))
            assert (await next_is(ws, "position", device_id="c"))["sensors"] == {"n": count}

    with running_api(patient) as base:
        asyncio.run(scenario(base))


def test_reconnect_gets_a_fresh_snapshot(settings: Settings) -> None:
    """Through real ingest: a client reconnecting, also to a restarted API, starts from
    a snapshot of where the devices are now."""
    assert settings.database_url and settings.mqtt_url
    prefix = settings.mqtt_topic_prefix

    def position(device: str, sec: int, lat: float) -> tuple[str, bytes]:
        ts = (NOW - timedelta(minutes=5) + timedelta(seconds=sec)).isoformat()
        return (f"{prefix}shiptrack/v1/devices/{device}/position",
                json.dumps({"ts": ts, "lat": lat, "lon": 8.0}).encode())

    async def first(base: str) -> None:
        async with websockets.connect(ws_url(base), compression=None) as ws:
            assert (await next_of(ws, "snapshot"))["devices"] == []
            await asyncio.to_thread(publish, settings.mqtt_url or "", [position("r1", 1, 50.0)])
            assert (await next_of(ws, "position"))["lat"] == 50.0
        await asyncio.to_thread(publish, settings.mqtt_url or "", [position("r1", 20, 50.001)])
        await asyncio.to_thread(wait_for, lambda: query(
            settings.database_url or "", "SELECT lat FROM devices")[0][0] == 50.001)

    async def again(base: str, lat: float, sec: int, lat2: float) -> None:
        async with websockets.connect(ws_url(base), compression=None) as ws:
            snap = await next_of(ws, "snapshot")
            assert [(d["device_id"], d["lat"]) for d in snap["devices"]] == [("r1", lat)]
            await asyncio.to_thread(publish, settings.mqtt_url or "", [position("r1", sec, lat2)])
            while (await next_of(ws, "position"))["lat"] != lat2:
                pass  # the live copy of the fix the snapshot already had may come late

    with running_ingest(settings):
        with running_api(settings) as base:
            asyncio.run(first(base))
            asyncio.run(again(base, 50.001, 40, 50.002))
        with running_api(settings) as base:  # the API restarted
            asyncio.run(again(base, 50.002, 60, 50.003))


def test_shutdown_closes_streams_with_1001(settings: Settings, tmp_path: Any) -> None:
    """``shiptrack api`` on SIGTERM: every stream client gets close code 1001."""
    port = free_port()
    env = {**os.environ, "SHIPTRACK_DATABASE_URL": settings.database_url or "",
           "SHIPTRACK_MQTT_URL": settings.mqtt_url or "", "SHIPTRACK_HTTP_PORT": str(port),
           "SHIPTRACK_ADMIN_TOKEN": LONG_TOKEN, "SHIPTRACK_DATA_DIR": str(tmp_path),
           "SHIPTRACK_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([sys.executable, "-m", "shiptrack", "api"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return httpx.get(base + "/readyz").status_code == 200
            except httpx.HTTPError:
                return False
        wait_for(up, timeout=20, interval=0.1)

        async def scenario() -> list[int | None]:
            url = base.replace("http", "ws") + f"/ws/fleet?token={LONG_TOKEN}"
            clients = [await websockets.connect(url, compression=None) for _ in range(3)]
            for ws in clients:
                await next_of(ws, "snapshot")
            proc.send_signal(signal.SIGTERM)
            codes = []
            for ws in clients:
                await asyncio.wait_for(ws.wait_closed(), 10)
                codes.append(ws.close_code)
            return codes

        assert asyncio.run(scenario()) == [1001, 1001, 1001]
        assert proc.wait(timeout=15) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def test_server_pings_keep_the_connection_checked(settings: Settings) -> None:
    """uvicorn sends protocol pings every SHIPTRACK_WS_PING_SECONDS; a raw client answers
    each with a pong and counts them."""
    from bench.ws_fanout import handshake

    def frames(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
        out, i = [], 0
        while len(buf) - i >= 2:
            length, head = buf[i + 1] & 0x7F, 2
            if length == 126:
                if len(buf) - i < 4:
                    break
                length, head = int.from_bytes(buf[i + 2:i + 4], "big"), 4
            if len(buf) - i < head + length:
                break
            out.append((buf[i] & 0x0F, buf[i + head:i + head + length]))
            i += head + length
        return out, buf[i:]

    pinging = settings.model_copy(update={"ws_ping_seconds": 0.2})
    seen: list[int] = []
    with running_api(pinging) as base:
        sock, buf = handshake(int(base.rsplit(":", 1)[1]), f"/ws/fleet?token={TOKEN}")
        sock.setblocking(True)
        sock.settimeout(0.05)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                buf += sock.recv(65536)
            got, buf = frames(buf)
            for opcode, payload in got:
                seen.append(opcode)
                if opcode == 9:  # ping: answer with a masked pong of the same payload
                    mask = os.urandom(4)
                    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                    sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + mask + body)
        sock.close()
    assert seen[0] == 1  # the snapshot
    assert seen.count(9) >= 3, seen  # pings, about every 0.2 s
