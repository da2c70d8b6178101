"""The simulator against the test session's broker (the ``mqtt_url`` fixture).

Each test publishes under its own topic prefix, so tests never see each other's messages.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from shiptrack.mqtturl import MqttTarget
from shiptrack.topics import route_topic
from simulator.fleet import Fleet
from simulator.publisher import SimulatorError, run
from tests.helpers import wait_for

SENTINEL = b"sentinel"


class Subscriber:
    """A paho client collecting every message under one topic prefix."""

    def __init__(self, target: MqttTarget, prefix: str) -> None:
        self.target = target
        self.prefix = prefix
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        if target.username is not None:
            self.client.username_pw_set(target.username, target.password)
        if target.tls:
            self.client.tls_set()
        self.client.on_connect = self.on_connect
        self.client.on_subscribe = self.on_subscribe
        self.client.on_message = self.on_message

    def __enter__(self) -> Subscriber:
        self.client.connect(self.target.host, self.target.port)
        self.client.loop_start()
        assert self.subscribed.wait(5.0), "subscription not acknowledged"
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(f"{self.prefix}shiptrack/v1/devices/+/position", qos=1)

    def on_subscribe(self, *args: Any) -> None:
        self.subscribed.set()

    def on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    def drain(self) -> list[tuple[str, bytes]]:
        """Every message that arrived before a sentinel published now, on the same
        subscription. Call it once the broker has acknowledged what was sent: the broker
        queues those before the sentinel, so nothing of theirs can arrive after it."""
        topic = f"{self.prefix}shiptrack/v1/devices/sentinel/position"
        self.client.publish(topic, SENTINEL, qos=1).wait_for_publish(5.0)

        def upto_sentinel() -> list[tuple[str, bytes]] | None:
            with self.lock:
                if (topic, SENTINEL) not in self.messages:
                    return None
                return self.messages[: self.messages.index((topic, SENTINEL))]

        wait_for(lambda: upto_sentinel() is not None)
        return upto_sentinel() or []


@pytest.fixture
def subscriber(mqtt_target: MqttTarget) -> Iterator[Subscriber]:
    with Subscriber(mqtt_target, f"test-{uuid.uuid4()}/") as sub:
        yield sub


def test_publishes_devices_times_count_valid_fixes(mqtt_target: MqttTarget,
                                                  subscriber: Subscriber) -> None:
    devices, count = 4, 5
    stats = run(mqtt_target, Fleet(devices, seed=7), 0.1, topic_prefix=subscriber.prefix,
                count=count)
    assert stats.sent == stats.acknowledged == devices * count
    assert stats.rate > 0 and not stats.interrupted

    messages = subscriber.drain()
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


def test_stops_after_duration(mqtt_target: MqttTarget, subscriber: Subscriber) -> None:
    stats = run(mqtt_target, Fleet(2), 0.1, topic_prefix=subscriber.prefix, duration_s=0.5)
    assert stats.elapsed >= 0.45 and not stats.interrupted  # not before its time
    # at most the ticks due within 0.5 s (0.0 .. 0.5 s, 2 devices), all acknowledged
    assert 0 < stats.sent <= 12 and stats.acknowledged == stats.sent
    assert len(subscriber.drain()) == stats.sent


def test_stops_when_the_stop_event_is_set(mqtt_target: MqttTarget, subscriber: Subscriber) -> None:
    # the next tick would be due in an hour: only the stop event can end this run in time
    stop, ticked = threading.Event(), threading.Event()
    ticks: list[datetime] = []

    def on_tick(now: datetime) -> None:
        ticks.append(now)
        ticked.set()

    def stop_after_the_first_tick() -> None:
        ticked.wait(30)
        stop.set()

    threading.Thread(target=stop_after_the_first_tick, daemon=True).start()
    stats = run(mqtt_target, Fleet(2), 3600.0, topic_prefix=subscriber.prefix, stop_event=stop,
                on_tick=on_tick)
    assert len(ticks) == 1 and not stats.interrupted
    assert stats.sent >= 1 and stats.acknowledged == stats.sent
    assert len(subscriber.drain()) == stats.sent


def test_unreachable_broker_is_a_clear_error() -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SimulatorError, match="cannot connect"):
        run(MqttTarget("127.0.0.1", port), Fleet(1), 1.0, count=1)


def test_same_seed_and_start_publish_the_same_bytes(mqtt_target: MqttTarget) -> None:
    from typer.testing import CliRunner

    from simulator.cli import app

    runs = []
    for _ in range(2):
        with Subscriber(mqtt_target, f"test-{uuid.uuid4()}/") as sub:
            result = CliRunner().invoke(app, [
                "--scenario", "chaos", "--devices", "4", "--count", "30", "--speed", "1000",
                "--seed", "3", "--start", "2026-11-26T01:00:00Z", "--mqtt-url", mqtt_target.url,
                "--topic-prefix", sub.prefix])
            assert result.exit_code == 0, result.output
            sent = int(result.output.split(" messages sent")[0].rsplit(" ", 1)[1])
            got = sub.drain()
        assert len(got) == sent
        runs.append(sorted((t[len(sub.prefix):], p) for t, p in got))
    assert runs[0] == runs[1] and len(runs[0]) > 100
