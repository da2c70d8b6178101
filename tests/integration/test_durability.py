"""The delivery guarantee, on a Mosquitto started from the project's config:
at-least-once from the broker, exactly-once in the table. Nothing is lost or doubled
when ingest is killed with SIGKILL, when the database restarts, or when the broker
restarts, and more than Mosquitto's default 1,000 queued messages survive an outage."""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from shiptrack.config import Settings
from tests.helpers import (
    ingest_process,
    publish,
    publish_until,
    query,
    running_ingest,
    wait_for,
)
from tests.integration.conftest import OwnPostgres
from tests.integration.durable_broker import DurableMosquitto

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)


def messages(settings: Settings, start: int, count: int) -> list[tuple[str, bytes]]:
    """Fix k: device d{k%3}, ts BASE+k s, lat 10+k*1e-5: content is checkable per row."""
    out = []
    for k in range(start, start + count):
        ts = (BASE + timedelta(seconds=k)).isoformat()
        body = json.dumps({"ts": ts, "lat": 10 + k * 1e-5, "lon": 20.0, "seq": k}).encode()
        out.append((f"{settings.mqtt_topic_prefix}shiptrack/v1/devices/d{k % 3}/position",
                    body))
    return out


def stored(settings: Settings) -> int:
    return int(query(settings.database_url or "", "SELECT count(*) FROM positions")[0][0])


def store_errors() -> float:
    """``shiptrack_ingest_store_errors`` of the ingest running in this process."""
    return REGISTRY.get_sample_value("shiptrack_ingest_store_errors_total") or 0.0


def assert_exactly(settings: Settings, total: int) -> None:
    rows = query(settings.database_url or "",
                 "SELECT device_id, seq, lat, ts FROM positions ORDER BY seq")
    assert [r[1] for r in rows] == list(range(total)), "lost or doubled fixes"
    for device, seq, lat, ts in rows:
        assert device == f"d{seq % 3}" and lat == pytest.approx(10 + seq * 1e-5)
        assert ts == BASE + timedelta(seconds=seq)
    assert query(settings.database_url or "", "SELECT count(*) FROM dead_letters")[0][0] == 0


def test_kill_9_mid_stream_loses_nothing_and_doubles_nothing(durable: Settings) -> None:
    total = 6000
    proc = ingest_process(durable)
    try:
        # re-sent until stored: then the session exists and the pipeline is live
        probe = messages(durable, 0, 1)
        publish_until(durable.mqtt_url or "", probe, lambda: stored(durable) == 1)
        sender = threading.Thread(
            target=publish, args=(durable.mqtt_url or "", messages(durable, 1, total - 1)))
        sender.start()
        wait_for(lambda: stored(durable) >= 1500, timeout=30)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        at_kill = stored(durable)
        assert at_kill < total, "the stream finished before the kill: nothing was tested"
        proc = ingest_process(durable)
        sender.join(60)
        wait_for(lambda: stored(durable) == total, timeout=60)
    finally:
        proc.kill()
        proc.wait(10)
    assert_exactly(durable, total)


def test_more_than_1000_queued_while_ingest_is_down_survive_a_broker_restart(
    durable: Settings, broker: DurableMosquitto
) -> None:
    with running_ingest(durable):  # creates the persistent session
        publish(durable.mqtt_url or "", messages(durable, 0, 1))
        wait_for(lambda: stored(durable) == 1)
    publish(durable.mqtt_url or "", messages(durable, 1, 3499))  # queued by the broker
    broker.restart()  # the queue is written to disk and read back
    with running_ingest(durable):
        wait_for(lambda: stored(durable) == 3500, timeout=60)
    assert_exactly(durable, 3500)


def test_ingest_reconnects_and_resumes_after_a_broker_restart(
    durable: Settings, broker: DurableMosquitto
) -> None:
    with running_ingest(durable):
        publish(durable.mqtt_url or "", messages(durable, 0, 500))
        wait_for(lambda: stored(durable) == 500)
        broker.restart()
        publish(durable.mqtt_url or "", messages(durable, 500, 500))
        wait_for(lambda: stored(durable) == 1000, timeout=60)
    assert_exactly(durable, 1000)


def test_database_restart_mid_stream(durable: Settings, own_postgres: OwnPostgres) -> None:
    """Ingest keeps the batch unacknowledged, retries with backoff, and catches up."""
    settings = durable.model_copy(update={"database_url": own_postgres.url})
    with running_ingest(settings):
        publish(settings.mqtt_url or "", messages(settings, 0, 1000))
        wait_for(lambda: stored(settings) == 1000)
        failed = store_errors()
        own_postgres.stop()
        publish(settings.mqtt_url or "", messages(settings, 1000, 1000))  # db is down
        wait_for(lambda: store_errors() > failed)  # the batch's store failed, retried
        own_postgres.start()
        wait_for(lambda: stored(settings) == 2000, timeout=60)
    assert_exactly(settings, 2000)
