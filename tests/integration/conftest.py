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
