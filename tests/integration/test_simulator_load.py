"""Load mode against a real Mosquitto: bounded by its rate, every message delivered.

A subscriber on the test's own prefix receives every message, on a Mosquitto of the
project's config (the machine's default one drops a QoS 1 subscriber's messages past
1,000 queued, so "every one arrived" would not hold there). Whether the target rate is
reached is a question of speed, measured by ``bench/simulator_load.py``, not asserted here.
"""

from __future__ import annotations

import re
import uuid

from typer.testing import CliRunner

from shiptrack.mqtturl import MqttTarget, parse_mqtt_url
from simulator.cli import app
from simulator.load import LoadPlan, run_load
from tests.integration.durable_broker import DurableMosquitto
from tests.integration.test_simulator_publish import Subscriber


def test_load_keeps_to_its_rate_and_every_message_arrives(broker: DurableMosquitto) -> None:
    load_target = parse_mqtt_url(broker.url)
    with Subscriber(load_target, f"test-{uuid.uuid4().hex[:10]}/") as sub:
        plan = LoadPlan(load_target, devices=500, rate=3000.0, duration_s=3.0, processes=2,
                        qos=1, topic_prefix=sub.prefix)
        progress: list[tuple[int, int, float]] = []
        stats = run_load(plan, lambda *p: progress.append(p))
        assert not stats.errors
        assert 0 < stats.sent <= 9000 + 10  # never ahead of rate x duration
        assert stats.acknowledged == stats.sent
        assert progress and progress[-1][0] == stats.sent
        received = sub.drain()  # QoS 1 end to end: every one arrived
    assert len(received) == stats.sent


def test_load_command_prints_the_summary(mqtt_target: MqttTarget) -> None:
    result = CliRunner().invoke(app, [
        "--scenario", "load", "--devices", "50", "--rate", "500", "--duration", "1",
        "--processes", "1", "--mqtt-url", mqtt_target.url,
        "--topic-prefix", f"test-{uuid.uuid4().hex[:10]}/"])
    assert result.exit_code == 0, result.output
    summary = re.search(r"load: sent ([\d,]+), acknowledged ([\d,]+), in [\d.]+ s: "
                        r"[\d,]+ msg/s achieved of 500 msg/s target", result.output)
    assert summary, result.output
    sent = int(summary.group(1).replace(",", ""))
    assert 0 < sent <= 510 and summary.group(2) == summary.group(1)


def test_load_reports_an_unreachable_broker() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stats = run_load(LoadPlan(parse_mqtt_url(f"mqtt://127.0.0.1:{port}"), devices=2,
                              rate=10.0, duration_s=0.5))
    assert stats.sent == 0 and stats.errors and "cannot connect" in stats.errors[0]
