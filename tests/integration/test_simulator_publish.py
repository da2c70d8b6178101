"""The simulator against the real local Mosquitto (``SHIPTRACK_MQTT_URL`` or 127.0.0.1:1883).

Each test publishes under its own topic prefix, so tests never see each other's messages.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from shiptrack.mqtturl import MqttTarget, parse_mqtt_url
from shiptrack.topics import route_topic
from simulator.fleet import Fleet
from simulator.publisher import SimulatorError, run

TARGET = parse_mqtt_url(os.environ.get("SHIPTRACK_MQTT_URL") or "mqtt://127.0.0.1:1883")


def broker_reachable(target: MqttTarget) -> bool:
    try:
        socket.create_connection((target.host, target.port), timeout=1.0).close()
    except OSError:
        return False
    return True


pytestmark = pytest.mark.skipif(
    not broker_reachable(TARGET), reason=f"no MQTT broker at {TARGET.url}"
)


class Subscriber:
    """A paho client collecting every message under one topic prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        if TARGET.username is not None:
            self.client.username_pw_set(TARGET.username, TARGET.password)
        if TARGET.tls:
            self.client.tls_set()
        self.client.on_connect = self.on_connect
        self.client.on_subscribe = self.on_subscribe
        self.client.on_message = self.on_message

    def on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(f"{self.prefix}shiptrack/v1/devices/+/position", qos=1)

    def on_subscribe(self, *args: Any) -> None:
        self.subscribed.set()

    def on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def wait_for(self, n: int, timeout: float = 10.0) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= n:
                    break
            time.sleep(0.02)
        time.sleep(0.2)  # anything beyond n would be a bug: give it a moment to show
        with self.lock:
            return list(self.messages)


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    sub = Subscriber(f"test-{uuid.uuid4()}/")
    sub.client.connect(TARGET.host, TARGET.port)
    sub.client.loop_start()
    assert sub.subscribed.wait(5.0), "subscription not acknowledged"
    yield sub
    sub.client.disconnect()
    sub.client.loop_stop()


def test_publishes_devices_times_count_valid_fixes(subscriber: Subscriber) -> None:
    devices, count = 4, 5
    stats = run(TARGET, Fleet(devices, seed=7), 0.1, topic_prefix=subscriber.prefix, count=count)
    assert stats.sent == stats.acknowledged == devices * count
    assert stats.rate > 0 and not stats.interrupted

    messages = subscriber.wait_for(devices * count)
    assert len(messages) == devices * count
    per_device: Counter[str] = Counter()
    seqs: dict[str, list[int]] = {}
    for topic, raw in messages:
        route = route_topic(topic, subscriber.prefix)
        assert route.kind == "position" and route.valid
        fix = msgspec.json.decode(raw)
        assert -90 <= fix["lat"] <= 90 and -180 <= fix["lon"] <= 180
        assert datetime.fromisoformat(fix["ts"]).tzinfo is not None
        assert 0 <= fix["battery"] <= 1 and 0 <= fix["heading"] < 360
        per_device[route.device_id] += 1
        seqs.setdefault(route.device_id, []).append(fix["seq"])
    assert per_device == {f"sim-{i:04d}": count for i in range(1, devices + 1)}
    assert all(sorted(s) == list(range(1, count + 1)) for s in seqs.values())


def test_stops_after_duration(subscriber: Subscriber) -> None:
    stats = run(TARGET, Fleet(2), 0.1, topic_prefix=subscriber.prefix, duration_s=0.5)
    assert 0.45 <= stats.elapsed < 5.0
    assert 6 <= stats.sent <= 12 and stats.acknowledged == stats.sent
    assert len(subscriber.wait_for(stats.sent)) == stats.sent


def test_stops_when_the_stop_event_is_set(subscriber: Subscriber) -> None:
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    stats = run(TARGET, Fleet(2), 1.0, topic_prefix=subscriber.prefix, speed=10.0, stop_event=stop)
    assert stats.elapsed < 5.0
    assert stats.sent >= 2 and stats.acknowledged == stats.sent


def test_unreachable_broker_is_a_clear_error() -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SimulatorError, match="cannot connect"):
        run(MqttTarget("127.0.0.1", port), Fleet(1), 1.0, count=1)


def test_same_seed_and_start_publish_the_same_bytes() -> None:
    from typer.testing import CliRunner

    from simulator.cli import app

    runs = []
    for _ in range(2):
        sub = Subscriber(f"test-{uuid.uuid4()}/")
        sub.client.connect(TARGET.host, TARGET.port)
        sub.client.loop_start()
        assert sub.subscribed.wait(5.0)
        result = CliRunner().invoke(app, [
            "--scenario", "chaos", "--devices", "4", "--count", "30", "--speed", "1000",
            "--seed", "3", "--start", "2026-11-26T01:00:00Z", "--mqtt-url", TARGET.url,
            "--topic-prefix", sub.prefix])
        assert result.exit_code == 0, result.output
        sent = int(result.output.split(" messages sent")[0].rsplit(" ", 1)[1])
        got = sub.wait_for(sent)
        sub.client.disconnect()
        sub.client.loop_stop()
        runs.append(sorted((t[len(sub.prefix):], p) for t, p in got))
    assert runs[0] == runs[1] and len(runs[0]) > 100
