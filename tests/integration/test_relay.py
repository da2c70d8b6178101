"""The MQTT 5 edge of NATS mode (issue 18, docs/SCALING.md): MQTT 5 devices publish to
an MQTT broker (the project-config Mosquitto of the ``broker`` fixture), ``shiptrack
relay`` moves each fix into its JetStream partition and acks it only once JetStream has
it, a partitioned worker stores it. Real servers: that Mosquitto, a nats-server of the
test's own, the machine's PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats

from ingest.relay import RelayStats
from shiptrack.config import Settings
from shiptrack.embedded_nats import EmbeddedNats
from shiptrack.partitions import STREAM, device_partition, split_partitioned
from tests.helpers import publish, query, service_thread, wait_for
from tests.integration.durable_broker import DurableMosquitto
from tests.integration.nats_fixture import (
    PARTITIONS,
    fixes,
    nats_server,
    nats_settings,
    publish311,
    stored,
    worker_thread,
)

__all__ = ["nats_server", "nats_settings"]  # fixtures


def publish5(mqtt_url: str, messages: list[tuple[str, bytes]]) -> None:
    """Publish at QoS 1 over MQTT 5 (the devices the relay is for); returns once the
    broker has PUBACKed every one."""
    publish(mqtt_url, messages)


def stream_subjects(nats_url: str) -> list[str]:
    """The subject of every message in the stream, in stream order."""
    async def read() -> list[str]:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            last = (await js.stream_info(STREAM)).state.last_seq
            return [str((await js.get_msg(STREAM, seq)).subject)
                    for seq in range(1, last + 1)]
        finally:
            await nc.close()
    return asyncio.run(read())


def stream_messages(nats_url: str) -> int:
    async def count() -> int:
        nc = await nats.connect(nats_url)
        try:
            return int((await nc.jetstream().stream_info(STREAM)).state.messages)
        finally:
            await nc.close()
    return asyncio.run(count())


@contextmanager
def relay_thread(settings: Settings) -> Iterator[RelayStats]:
    """``ingest.relay.run`` in a thread until the block ends (yields its counters)."""
    from ingest.relay import run

    stats = RelayStats()
    with service_thread(lambda stop, ready: run(settings, stop, ready, stats), "relay",
                        start_timeout=30, join_timeout=30):
        yield stats


def relay_process(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """``shiptrack relay`` as its own process (for kill -9)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPTRACK_")}
    env |= {
        "SHIPTRACK_MQTT_URL": settings.mqtt_url or "",
        "SHIPTRACK_NATS_URL": settings.nats_url or "",
        "SHIPTRACK_MQTT_TOPIC_PREFIX": settings.mqtt_topic_prefix,
        "SHIPTRACK_PARTITIONS": str(settings.partitions),
        "SHIPTRACK_RELAY_CLIENT_ID": settings.relay_client_id,
        "SHIPTRACK_METRICS_PORT": "0",
        "SHIPTRACK_LOG_LEVEL": "INFO",
    }
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "shiptrack", "relay"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def edge(nats_settings: Settings, broker: DurableMosquitto) -> Settings:
    """The relay's settings: the devices' broker is the Mosquitto."""
    prefix = nats_settings.mqtt_topic_prefix
    return nats_settings.model_copy(update={
        "mqtt_url": broker.url, "relay_client_id": f"relay-{prefix.strip('/')}"})


def test_mqtt5_fixes_relayed_each_stored_once_on_the_partition_of_a_direct_publish(
        nats_settings: Settings, broker: DurableMosquitto) -> None:
    db = nats_settings.database_url or ""
    prefix = nats_settings.mqtt_topic_prefix
    devices, per = 100, 10
    start = datetime.now(UTC) - timedelta(seconds=10 * (per + 1))
    stream = fixes(prefix, devices, per, start)
    bad = [(f"{prefix}shiptrack/v1/devices//position", b'{"ts": "x"}'),  # names no device
           (f"{prefix}shiptrack/v1/devices/a b/position", b"{}")]
    with worker_thread(nats_settings, "wa"), relay_thread(edge(nats_settings, broker)) as stats:
        publish5(broker.url, bad[:1] + stream + bad[1:])
        wait_for(lambda: stored(db) == len(stream), timeout=60, interval=0.2)
        wait_for(lambda: stats.bad_topics == 2)
        # one later fix of each of three devices straight to the NATS MQTT listener
        publish311(nats_settings.mqtt_url or "", fixes(prefix, 3, per + 1, start)[-3:])
        wait_for(lambda: stored(db) == len(stream) + 3, timeout=30, interval=0.2)
    assert stats.relayed == len(stream) and stats.acked == len(stream) + 2
    assert stats.duplicates == 0 and stats.publish_errors == 0
    subjects = stream_subjects(nats_settings.nats_url or "")
    assert len(subjects) == len(stream) + 3
    relayed, direct_subjects = subjects[:-3], subjects[-3:]
    seen: dict[str, set[str]] = {}
    for subject in relayed:
        partition, topic = split_partitioned(subject)
        device = topic.split("/")[-2]
        assert partition == device_partition(device, PARTITIONS), subject
        seen.setdefault(device, set()).add(subject)
    assert len(seen) == devices and all(len(s) == 1 for s in seen.values())
    for subject in direct_subjects:  # the server's own mapping: the same subjects
        device = split_partitioned(subject)[1].split("/")[-2]
        assert seen[device] == {subject}
    rows = query(db, "SELECT count(*), count(DISTINCT (device_id, ts)) FROM positions")
    assert rows[0] == (len(stream) + 3, len(stream) + 3)


def test_relay_killed_mid_stream_and_restarted_loses_nothing_stores_no_duplicate(
        nats_settings: Settings, broker: DurableMosquitto, tmp_path: Path) -> None:
    db = nats_settings.database_url or ""
    settings = edge(nats_settings, broker)
    devices, per = 100, 40
    stream = fixes(settings.mqtt_topic_prefix, devices, per,
                   datetime.now(UTC) - timedelta(seconds=10 * per))
    half = len(stream) // 2
    log = tmp_path / "relay.log"
    with worker_thread(nats_settings, "wa"):
        relay = relay_process(settings, log)
        try:
            wait_for(lambda: "relay running" in log.read_text(), timeout=30)
            publish5(broker.url, stream[:half])
            wait_for(lambda: stream_messages(settings.nats_url or "") > 0, timeout=30,
                     interval=0.01)
            relay.send_signal(signal.SIGKILL)  # mid-stream: Mosquitto keeps the session
            relay.wait(10)
            publish5(broker.url, stream[half:])  # queued for the relay's session
            relay = relay_process(settings, log)
            wait_for(lambda: stored(db) == len(stream), timeout=90, interval=0.2)
        finally:
            relay.send_signal(signal.SIGTERM)
            relay.wait(15)
    # whatever JetStream had when the relay died came again and was dropped as a
    # duplicate (its Nats-Msg-Id): the stream holds each fix once
    assert stream_messages(settings.nats_url or "") == len(stream)
    rows = query(db, "SELECT count(*), count(DISTINCT (device_id, ts)) FROM positions")
    assert rows[0] == (len(stream), len(stream))
    assert query(db, "SELECT count(*) FROM dead_letters")[0][0] == 0


def test_nats_down_the_relay_acks_nothing_and_everything_arrives_after(
        nats_settings: Settings, broker: DurableMosquitto, nats_server: EmbeddedNats) -> None:
    db = nats_settings.database_url or ""
    settings = edge(nats_settings, broker)
    devices, per = 50, 12
    stream = fixes(settings.mqtt_topic_prefix, devices, per,
                   datetime.now(UTC) - timedelta(seconds=10 * per))
    first = devices * 2
    with worker_thread(nats_settings, "wa"), relay_thread(settings) as stats:
        publish5(broker.url, stream[:first])
        wait_for(lambda: stored(db) == first, timeout=30, interval=0.2)
        assert stats.acked == first
        nats_server.stop()
        publish5(broker.url, stream[first:])  # the broker PUBACKs the devices
        wait_for(lambda: stats.publish_errors > 0, timeout=30, interval=0.1)
        assert stats.acked == first  # JetStream has not confirmed them: none acked
        assert stats.relayed == first
        nats_server.start()
        wait_for(lambda: stored(db) == len(stream), timeout=60, interval=0.2)
        wait_for(lambda: stats.acked == len(stream), timeout=30)
    assert stats.relayed == len(stream)
    assert stream_messages(settings.nats_url or "") == len(stream)
    rows = query(db, "SELECT count(*), count(DISTINCT (device_id, ts)) FROM positions")
    assert rows[0] == (len(stream), len(stream))
