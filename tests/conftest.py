"""Shared fixtures: the real PostgreSQL and MQTT broker.

``SHIPTRACK_DATABASE_URL`` / ``SHIPTRACK_MQTT_URL`` name the servers (CI: the machine's
services); where unset, the same embedded servers as ``shiptrack up`` are started for the
session. Every test gets its own database, cloned from a migrated template, and its own
topic prefix, so tests never see each other's rows or messages, and the tests run in
parallel (pytest-xdist: ``scripts/test`` passes ``-n auto``).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from shiptrack.config import Settings
from shiptrack.db.migrate import migrate
from shiptrack.mqtturl import MqttTarget, parse_mqtt_url
from tests.helpers import cloned_database


def pytest_configure(config: pytest.Config) -> None:
    # the tests must never read a developer's own SHIPTRACK_* settings but the two URLs
    for key in list(os.environ):
        if key.startswith("SHIPTRACK_") and key not in (
            "SHIPTRACK_DATABASE_URL", "SHIPTRACK_MQTT_URL"):
            del os.environ[key]


MAX_WORKERS = 4  # each worker clones its own template database (and, without the two
# URLs, starts its own embedded servers): more than a few buys little but load


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (scripts/test): one worker a core this process may use (all of them
    where the OS does not say: macOS has no ``sched_getaffinity``), at most ``MAX_WORKERS``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MAX_WORKERS, cores or 1))


@pytest.fixture(scope="session")
def servers() -> Iterator[tuple[str, str]]:
    """(admin database URL, MQTT URL) of the real servers for this test session."""
    db = os.environ.get("SHIPTRACK_DATABASE_URL")
    mqtt = os.environ.get("SHIPTRACK_MQTT_URL")
    with ExitStack() as stack:
        if not db or not mqtt:
            from shiptrack.embedded import EmbeddedBroker, EmbeddedPostgres

            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="shiptrack-")))
            if not db:
                pg = stack.enter_context(EmbeddedPostgres(base / "pg", ephemeral=True))
                db = pg.start()
            if not mqtt:
                broker = stack.enter_context(EmbeddedBroker(base / "broker"))
                mqtt = broker.start()
        yield db, mqtt


@pytest.fixture(scope="session")
def admin_db_url(servers: tuple[str, str]) -> str:
    return servers[0]


@pytest.fixture(scope="session")
def mqtt_url(servers: tuple[str, str]) -> str:
    return servers[1]


@pytest.fixture(scope="session")
def mqtt_target(mqtt_url: str) -> MqttTarget:
    """The session's broker, parsed (for clients that take host, port and credentials)."""
    return parse_mqtt_url(mqtt_url)


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(url, autocommit=True)


@pytest.fixture(scope="session")
def template_db(admin_db_url: str) -> Iterator[str]:
    """A database built by running every migration once; tests clone it."""
    name = f"shiptrack_tmpl_{uuid.uuid4().hex[:10]}"
    with _admin(admin_db_url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    migrate(make_conninfo(admin_db_url, dbname=name))
    yield name
    with _admin(admin_db_url) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(admin_db_url: str, template_db: str) -> Iterator[str]:
    """A fresh, fully migrated database of this test's own."""
    with cloned_database(admin_db_url, template_db) as url:
        yield url


@pytest.fixture
def topic_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}/"


@pytest.fixture
def settings(db_url: str, mqtt_url: str, topic_prefix: str) -> Settings:
    return Settings(
        database_url=db_url, mqtt_url=mqtt_url, mqtt_topic_prefix=topic_prefix,
        mqtt_client_id=f"ingest-{topic_prefix.strip('/')}", metrics_port=0,
        admin_token="test-admin-token", ingest_batch_ms=20,
    )
