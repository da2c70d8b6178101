"""Fixtures of the integration tests that need a broker of their own."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from shiptrack.config import Settings
from tests.integration.durable_broker import DurableMosquitto


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DurableMosquitto]:
    if shutil.which("mosquitto") is None and not Path("/usr/sbin/mosquitto").exists():
        if os.environ.get("CI"):
            pytest.fail("CI needs a mosquitto binary for the delivery-guarantee tests")
        pytest.skip("no mosquitto binary: the delivery-guarantee tests need one")
    server = DurableMosquitto(tmp_path / "broker")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def durable(settings: Settings, broker: DurableMosquitto) -> Settings:
    return settings.model_copy(update={"mqtt_url": broker.url})


class OwnPostgres:
    """A migrated database on an embedded PostgreSQL of the test's own, so that the test
    may stop and start the server (its data is kept across)."""

    def __init__(self, data_dir: Path) -> None:
        from shiptrack.embedded import EmbeddedPostgres

        self.server = EmbeddedPostgres(data_dir)
        self.url = ""

    def create(self, name: str) -> str:
        import psycopg
        from psycopg.conninfo import make_conninfo

        from shiptrack.db.migrate import migrate

        admin = self.server.start()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        self.url = make_conninfo(admin, dbname=name)
        migrate(self.url)
        return self.url

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.start()


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[OwnPostgres]:
    pg = OwnPostgres(tmp_path / "pg")
    try:
        pg.create("shiptrack_own")
        yield pg
    finally:
        pg.stop()
