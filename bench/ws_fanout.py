"""WebSocket fan-out: the real hub + ``/ws/fleet`` endpoint against a bare Starlette loop
sending pre-encoded text, side by side in one run, on loopback.

    SHIPTRACK_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
    SHIPTRACK_MQTT_URL=mqtt://127.0.0.1:1883 python -m bench.ws_fanout [--clients 100 1000]

One process serves (uvicorn, the app of ``create_app`` plus a ``/bench/bare`` route), a
second process is the clients: raw sockets that do the WebSocket handshake (no
compression) and then only count frames, so the clients cost little. For each client
count, each round connects N clients to one side and pushes M position messages to
every client:

- bare: ``for text in messages: for ws in clients: await ws.send_text(text)``, the text
  encoded beforehand;
- hub: each message goes through the live feed's ``dispatch`` (JSON decode, encode once)
  into ``Hub.publish_position`` (per-client outbox), and each client's own task sends.

deliveries/s = N x M / (time until the clients have received every frame); also N x M
per CPU second of the server process (less sensitive to a busy host and to how fast the
client process reads). Rounds alternate bare/hub; medians (and the best wall-clock
rates) are reported: the host is shared and noisy, compare the two sides of one run.
A temporary database is made and dropped. Bounded: about 60k deliveries per round, a
few rounds, loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import socket
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from bench.scratch import create_scratch, drop_scratch

TOKEN = "bench-admin-token"
TARGET_DELIVERIES = 60_000


async def until(predicate: Callable[[], object], interval: float = 0.01,
                limit: float = 120.0) -> float:
    """Poll ``predicate`` (counters of another process, server state) until true; returns
    the time it became true."""
    deadline = time.perf_counter() + limit
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"not done within {limit} s")
        await asyncio.sleep(interval)
    return time.perf_counter()


# ---- clients (their own process) ------------------------------------------------------

def handshake(port: int, path: str) -> tuple[socket.socket, bytes]:
    """A connected, upgraded socket, and what came after the response headers."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        head += chunk
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    sock.setblocking(False)
    return sock, head.split(b"\r\n\r\n", 1)[1]


class Counter(asyncio.Protocol):
    """Counts the text frames of one connection (server frames are not masked)."""

    def __init__(self, total: Synchronized) -> None:  # type: ignore[type-arg]
        self.buf = b""
        self.total = total

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        i, n, frames = 0, len(buf), 0
        while n - i >= 2:
            opcode, length = buf[i] & 0x0F, buf[i + 1] & 0x7F
            head = 2
            if length == 126:
                if n - i < 4:
                    break
                length, head = int.from_bytes(buf[i + 2:i + 4], "big"), 4
            elif length == 127:
                if n - i < 10:
                    break
                length, head = int.from_bytes(buf[i + 2:i + 10], "big"), 10
            if n - i < head + length:
                break
            i += head + length
            frames += opcode == 1
        self.buf = buf[i:]
        if frames:
            with self.total.get_lock():
                self.total.value += frames


def clients_main(port: int, path: str, count: int, total: Synchronized,  # type: ignore[type-arg]
                 ready: Any, stop: Any) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        transports = []
        for _ in range(count):
            sock, rest = handshake(port, path)
            transport, counter = await loop.connect_accepted_socket(
                lambda: Counter(total), sock=sock)
            if rest:
                counter.data_received(rest)
            transports.append(transport)
        ready.set()
        await until(stop.is_set, 0.05, limit=600)
        for t in transports:
            t.close()
        await asyncio.sleep(0.2)

    asyncio.run(run())


# ---- server side -----------------------------------------------------------------------

def position_payload(i: int) -> bytes:
    return json.dumps([{"device_id": f"d{i}", "ts": "2026-11-26T10:00:00.250Z",
                        "lat": 52.52 + i * 1e-6, "lon": 13.405, "speed": 12.5,
                        "heading": 270.0}]).encode()


def cpu_seconds() -> float:
    """CPU time of this (the server's) process, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_round(app: Any, port: int, side: str, n: int, m: int) -> tuple[float, float]:
    """(deliveries per second of wall time, deliveries per CPU second of the server)"""
    from api.hub import Hub
    from api.live_feed import dispatch, position_text
    from shiptrack.topics import LIVE_POSITIONS

    ctx = mp.get_context("spawn")
    total, ready, stop = ctx.Value("q", 0), ctx.Event(), ctx.Event()
    path = "/bench/bare" if side == "bare" else f"/ws/fleet?token={TOKEN}"
    proc = ctx.Process(target=clients_main, args=(port, path, n, total, ready, stop))
    proc.start()
    hub: Hub = app.state.hub
    try:
        if not await asyncio.get_running_loop().run_in_executor(None, ready.wait, 60):
            raise RuntimeError("the clients did not connect")
        if side == "bare":
            await until(lambda: len(app.state.bare) >= n)
            texts = [position_text(json.loads(position_payload(i))[0]) for i in range(m)]
        else:
            await until(lambda: len(hub.subscribers) >= n and total.value >= n)  # snapshots
        base = total.value
        start, cpu_start = time.perf_counter(), cpu_seconds()
        if side == "bare":
            clients = list(app.state.bare)
            for text in texts:
                for ws in clients:
                    await ws.send_text(text)
        else:
            burst = 50
            for i in range(0, m, burst):
                for j in range(i, min(i + burst, m)):
                    dispatch(hub, LIVE_POSITIONS, position_payload(j))
                await until(lambda: sum(len(s.positions) for s in hub.subscribers)
                            <= n * burst, interval=0)
        end = await until(lambda: total.value >= base + n * m)
        return n * m / (end - start), n * m / (cpu_seconds() - cpu_start)
    finally:
        stop.set()
        await asyncio.get_running_loop().run_in_executor(None, proc.join, 10)
        if proc.is_alive():
            proc.kill()
        await until(lambda: not app.state.bare and not (side == "hub" and hub.subscribers))


def bare_route(app: Any) -> None:
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    app.state.bare = set()

    async def bare(ws: WebSocket) -> None:
        await ws.accept()
        app.state.bare.add(ws)
        try:
            while True:
                await ws.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            app.state.bare.discard(ws)

    app.router.routes.append(WebSocketRoute("/bench/bare", bare))  # plain Starlette: no DI


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    import uvicorn

    from api.app import create_app
    from shiptrack.config import Settings

    admin_url = os.environ["SHIPTRACK_DATABASE_URL"]
    db_url = create_scratch(admin_url)
    results: list[dict[str, Any]] = []
    try:
        settings = Settings(database_url=db_url, mqtt_url=os.environ["SHIPTRACK_MQTT_URL"],
                            mqtt_topic_prefix=f"bench-{uuid.uuid4().hex[:8]}/",
                            ws_queue_limit=100_000, ws_stall_seconds=60)
        app = create_app(settings, TOKEN)
        bare_route(app)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", ws_ping_interval=None,
                                backlog=4096)
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        await until(lambda: server.started, 0.05)
        try:
            for n in args.clients:
                m = max(20, TARGET_DELIVERIES // n)
                rates: dict[str, list[float]] = {"bare": [], "hub": []}
                per_cpu: dict[str, list[float]] = {"bare": [], "hub": []}
                for _ in range(args.rounds):
                    for side in ("bare", "hub"):
                        rate, cpu_rate = await run_round(app, port, side, n, m)
                        rates[side].append(rate)
                        per_cpu[side].append(cpu_rate)
                        print(f"  {n:5d} clients x {m} msgs  {side:4s} {rate:9.0f} deliveries/s"
                              f"  {cpu_rate:9.0f} per server CPU s", file=sys.stderr)
                med = {k: statistics.median(v) for k, v in rates.items()}
                cpu = {k: statistics.median(v) for k, v in per_cpu.items()}
                results.append({
                    "clients": n, "messages": m, "rounds": args.rounds,
                    "bare_median_per_s": round(med["bare"]),
                    "hub_median_per_s": round(med["hub"]),
                    "bare_best_per_s": round(max(rates["bare"])),
                    "hub_best_per_s": round(max(rates["hub"])),
                    "ratio_of_medians": round(med["hub"] / med["bare"], 3),
                    "bare_per_cpu_s": round(cpu["bare"]), "hub_per_cpu_s": round(cpu["hub"]),
                    "ratio_per_cpu_s": round(cpu["hub"] / cpu["bare"], 3)})
        finally:
            server.should_exit = True
            await serving
    finally:
        drop_scratch(admin_url, db_url)
    return results


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if max(args.clients) > 5000 or args.rounds > 10:
        parser.error("bounded: at most 5000 clients and 10 rounds")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = datetime.now(UTC).isoformat(timespec="seconds")
    results = asyncio.run(main(args))
    print(json.dumps({"started": started, "cpus": os.cpu_count(), "results": results},
                     indent=2))


if __name__ == "__main__":
    cli()
