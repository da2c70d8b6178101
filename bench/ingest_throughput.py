"""Ingest throughput and latency, against a do-nothing subscriber in the same run.

Run from the repository root (needs PostgreSQL and a mosquitto binary):

    SHIPTRACK_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.ingest_throughput --messages 30000

Every phase preloads the same kind of stream into a persistent session of a Mosquitto
started from the project's config (deploy/mosquitto/conf.d), then lets the consumer
drain it, so the publisher's speed does not limit what is measured:

1. a do-nothing paho subscriber (QoS 1, MQTT 5, auto-ack): the floor to compare with;
2. one ``shiptrack ingest`` process: fixes stored per second (rows counted in the table);
3. the same with array payloads of ``--batch`` fixes per message;
4. two ingest processes sharing the subscription (MQTT 5 shared subscription);
5. latency at half of the measured single-process rate: publish time to the live
   republish (after commit), p50/p95/p99.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from bench.scratch import create_scratch, drop_scratch
from tests.integration.durable_broker import DurableMosquitto

Message = tuple[str, bytes]


def make_stream(prefix: str, count: int, devices: int, batch: int, start: int = 0,
                stamp: bool = False) -> list[Message]:
    """``count`` messages of ``batch`` fixes each, round-robin over ``devices``."""
    base = datetime.now(UTC) - timedelta(days=2)
    out: list[Message] = []
    k = start
    for _ in range(count):
        fixes = []
        device = k % devices
        for _ in range(batch):
            ts = base + timedelta(milliseconds=k)
            fix = {"ts": ts.isoformat(), "lat": 50 + (k % 997) * 1e-6, "lon": 8.0,
                   "speed": 12.5, "heading": 90.0, "accuracy": 5.0, "seq": k}
            if stamp:
                fix["ts"] = datetime.now(UTC).isoformat()
                fix["sent"] = time.time()
            fixes.append(fix)
            k += 1
        body = json.dumps(fixes[0] if batch == 1 else fixes).encode()
        out.append((f"{prefix}shiptrack/v1/devices/dev-{device:05d}/position", body))
    return out


def publish_all(url_port: int, messages: list[Message]) -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(5000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", url_port)
    client.loop_start()
    infos = [client.publish(t, p, qos=1) for t, p in messages]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def session_subscriber(port: int, client_id: str, topic: str,
                       on_message: Callable[[], None] | None = None) -> mqtt.Client:
    """Connect a persistent-session subscriber (creating its session)."""
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                         client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    props.ReceiveMaximum = 20000
    subscribed = threading.Event()
    client.on_subscribe = lambda *a: subscribed.set()
    if on_message is not None:
        client.on_message = lambda c, u, m: on_message()
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe(topic, qos=1)
    subscribed.wait(10)
    return client


def bench_do_nothing(port: int, prefix: str, messages: list[Message]) -> float:
    client_id = f"bench-sub-{uuid.uuid4().hex[:8]}"
    topic = f"{prefix}shiptrack/v1/devices/+/position"
    session_subscriber(port, client_id, topic).disconnect()
    time.sleep(0.2)
    publish_all(port, messages)
    n, done, first = 0, threading.Event(), [0.0]

    def count() -> None:
        nonlocal n
        if n == 0:
            first[0] = time.perf_counter()
        n += 1
        if n == len(messages):
            done.set()

    client = session_subscriber(port, client_id, topic, count)
    if not done.wait(300):
        raise TimeoutError(f"the subscriber got {n} of {len(messages)} messages")
    elapsed = time.perf_counter() - first[0]
    client.disconnect()
    client.loop_stop()
    return len(messages) / elapsed


def ingest_env(
    db_url: str, port: int, prefix: str, client_id: str, group: str = ""
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPTRACK_")}
    env |= {"SHIPTRACK_DATABASE_URL": db_url, "SHIPTRACK_MQTT_URL": f"mqtt://127.0.0.1:{port}",
            "SHIPTRACK_MQTT_TOPIC_PREFIX": prefix, "SHIPTRACK_MQTT_CLIENT_ID": client_id,
            "SHIPTRACK_METRICS_PORT": "0",
            "SHIPTRACK_LOG_LEVEL": os.environ.get("BENCH_INGEST_LOG_LEVEL", "WARNING"),
            "SHIPTRACK_MQTT_SHARED_GROUP": group}
    return env


def start_ingest(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "shiptrack", "ingest"], env=env)


def rows(db_url: str) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM positions").fetchone()
    return int(row[0]) if row else 0


def drain_rate(db_url: str, target: int, since: datetime, timeout: float = 600) -> float:
    """Rows stored per second by ingest's transactions that began after ``since``, once
    the table holds ``target`` rows. Each row carries its transaction's start
    (``received_at``, ``now()``), so the rate is the rows of every transaction but the
    last over the time from the first one's start to the last one's: the first
    transaction's wait for start-up is left out, and no poll can miss a drain that
    committed between two of them. With a single transaction there is no span: the rate
    is then its rows over the time since ``since`` (start-up included, a lower bound)."""
    deadline = time.monotonic() + timeout
    while rows(db_url) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {rows(db_url)} of {target} rows stored")
        time.sleep(0.01)
    with psycopg.connect(db_url, autocommit=True) as conn:
        found = conn.execute(
            "SELECT received_at, count(*) FROM positions WHERE received_at > %s"
            " GROUP BY received_at ORDER BY received_at", (since,)).fetchall()
    if len(found) < 2:
        stored = sum(int(n) for _, n in found)
        return stored / max((datetime.now(UTC) - since).total_seconds(), 1e-3)
    span: float = (found[-1][0] - found[0][0]).total_seconds()
    return sum(int(n) for _, n in found[:-1]) / span


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM, then SIGKILL whatever has not exited in 30 s: no ingest outlives a phase
    (one left behind kept the benchmark's output pipe open after a failure)."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def bench_ingest(admin_url: str, port: int, messages: list[Message], fixes: int,
                 processes: int = 1) -> float:
    """Preload ``messages`` for ingest's session(s), start ingest, time the drain."""
    db_url = create_scratch(admin_url)
    prefix = messages[0][0].split("shiptrack/")[0]
    group = f"g{uuid.uuid4().hex[:6]}" if processes > 1 else ""
    envs = [ingest_env(db_url, port, prefix, f"bench-ingest-{uuid.uuid4().hex[:8]}", group)
            for _ in range(processes)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        # create the persistent sessions, then stop: the stream queues up for them
        procs = [start_ingest(e) for e in envs]
        probe = make_stream(prefix, 1, 1, 1, start=10_000_000)
        deadline = time.monotonic() + 30
        while rows(db_url) < 1 and time.monotonic() < deadline:
            publish_all(port, probe)
            time.sleep(0.5)
        time.sleep(0.5 * processes)  # let every shared member subscribe
        stop(procs)
        publish_all(port, messages)
        since = datetime.now(UTC)
        procs = [start_ingest(e) for e in envs]
        return drain_rate(db_url, fixes + 1, since)
    finally:
        stop(procs)
        drop_scratch(admin_url, db_url)


def bench_latency(admin_url: str, port: int, rate: float, seconds: float,
                  devices: int) -> list[tuple[float, float]]:
    """Per fix: (publish -> a plain subscriber's receipt, publish -> ingest's live
    republish after commit), both seen by one watcher client, in seconds."""
    db_url = create_scratch(admin_url)
    prefix = f"bench-{uuid.uuid4().hex[:8]}/"
    raw: dict[int, float] = {}
    live: dict[int, float] = {}
    watcher = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                          protocol=mqtt.MQTTv5)

    def on_message(c: mqtt.Client, u: object, m: mqtt.MQTTMessage) -> None:
        now = time.time()
        data = json.loads(m.payload)
        if isinstance(data, list):
            for fix in data:
                sent = (fix.get("attrs") or {}).get("sent")
                if sent:
                    live[fix["seq"]] = now - sent
        elif "sent" in data:
            raw[data["seq"]] = now - data["sent"]

    watcher.on_message = on_message
    watcher.connect("127.0.0.1", port)
    watcher.loop_start()
    watcher.subscribe(f"{prefix}shiptrack/v1/live/positions", qos=0)
    watcher.subscribe(f"{prefix}shiptrack/v1/devices/+/position", qos=0)
    proc = start_ingest(ingest_env(db_url, port, prefix, f"bench-lat-{uuid.uuid4().hex[:8]}"))
    try:
        pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                          protocol=mqtt.MQTTv5)
        pub.max_inflight_messages_set(5000)
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        probe = make_stream(prefix, 1, 1, 1, start=10_000_000)
        deadline = time.monotonic() + 30
        while rows(db_url) < 1 and time.monotonic() < deadline:
            pub.publish(*probe[0], qos=1)
            time.sleep(0.5)
        total = int(rate * seconds)
        topics = [f"{prefix}shiptrack/v1/devices/dev-{i % devices:05d}/position"
                  for i in range(total)]
        template = '{"ts":"%s","lat":50.0,"lon":8.0,"seq":%d,"sent":%.6f}'
        start = time.perf_counter()
        for i in range(total):
            now = time.time()
            ts = datetime.fromtimestamp(now, UTC).isoformat()
            pub.publish(topics[i], (template % (ts, i, now)).encode(), qos=1)
            ahead = start + (i + 1) / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        time.sleep(2)
        pub.disconnect()
        pub.loop_stop()
    finally:
        stop([proc])
        watcher.disconnect()
        watcher.loop_stop()
        drop_scratch(admin_url, db_url)
    return [(raw[k], live[k]) for k in live if k in raw]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def report_latency(admin_url: str, port: int, rate: float, label: str,
                   args: argparse.Namespace) -> None:
    lat = bench_latency(admin_url, port, rate, args.latency_seconds, args.devices)
    if not lat:
        print(f"latency at {rate:.0f} fixes/s: no fix came back")
        return
    added = [b - a for a, b in lat]
    print(f"latency at {rate:5.0f} fixes/s ({label}, {len(lat)} fixes): "
          f"plain subscriber p50 {pct([a for a, _ in lat], 50) * 1000:.0f} ms; "
          f"live republish after commit p50 {pct([b for _, b in lat], 50) * 1000:.0f} ms; "
          f"added by ingest p50 {pct(added, 50) * 1000:.0f} / p95 {pct(added, 95) * 1000:.0f}"
          f" / p99 {pct(added, 99) * 1000:.0f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=30000)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--latency-seconds", type=float, default=5.0)
    parser.add_argument("--latency-rate", type=float, default=0.0,
                        help="measure latency only, at this rate (skips throughput)")
    args = parser.parse_args()
    admin_url = os.environ.get("SHIPTRACK_DATABASE_URL",
                               "postgresql://postgres@127.0.0.1:5432/postgres")
    with tempfile.TemporaryDirectory() as tmp:
        broker = DurableMosquitto(Path(tmp) / "broker")
        broker.start()
        try:
            n = args.messages
            p = lambda: f"bench-{uuid.uuid4().hex[:8]}/"  # noqa: E731
            if args.latency_rate:
                report_latency(admin_url, broker.port, args.latency_rate, "given rate", args)
                return
            print(f"stream: {n} messages, {args.devices} devices, QoS 1, "
                  f"Mosquitto from deploy/mosquitto/conf.d", flush=True)
            prefix = p()
            sub = bench_do_nothing(broker.port, prefix, make_stream(prefix, n, args.devices, 1))
            print(f"do-nothing paho subscriber : {sub:9.0f} msg/s", flush=True)
            one = bench_ingest(admin_url, broker.port, make_stream(p(), n, args.devices, 1), n)
            print(f"ingest, 1 process          : {one:9.0f} fixes/s  ({one / sub:.2f} of the "
                  f"subscriber)", flush=True)
            m = max(1, n // args.batch)
            batched = bench_ingest(admin_url, broker.port,
                                   make_stream(p(), m, args.devices, args.batch), m * args.batch)
            print(f"ingest, arrays of {args.batch:<3d}     : {batched:9.0f} fixes/s  "
                  f"({batched / sub:.2f} x the subscriber's messages)", flush=True)
            two = bench_ingest(admin_url, broker.port, make_stream(p(), n, args.devices, 1), n,
                               processes=2)
            print(f"ingest, 2 processes shared : {two:9.0f} fixes/s  ({two / one:.2f} x one "
                  f"process)", flush=True)
            for rate, label in ((one / 2, "half of 1-process peak"), (1000.0, "steady fleet")):
                report_latency(admin_url, broker.port, rate, label, args)
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
