"""End to end on real servers: simulated devices -> broker -> ingest -> positions ->
live topic -> API -> /ws/fleet client. And `shiptrack up` as a user runs it."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import websockets
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from shiptrack.broker_auth import find_plugin
from shiptrack.config import Settings
from shiptrack.embedded import find_mosquitto, free_port, mqtt_connect_ok
from shiptrack.mqtturl import parse_mqtt_url
from simulator.fleet import Fleet
from simulator.publisher import run as simulate
from tests.helpers import query, running_api, running_ingest, wait_for


def test_simulated_fleet_reaches_the_table_and_the_fleet_stream(settings: Settings) -> None:
    assert settings.mqtt_url and settings.database_url
    target = parse_mqtt_url(settings.mqtt_url)
    received: dict[str, dict[str, Any]] = {}

    done = threading.Event()

    async def watch(base: str, ready: threading.Event) -> None:
        url = base.replace("http", "ws") + "/ws/fleet?token=test-admin-token"
        async with websockets.connect(url) as ws:
            assert json.loads(await ws.recv())["type"] == "snapshot"
            ready.set()
            while not done.is_set():
                try:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
                except TimeoutError:
                    continue
                if msg["type"] == "position":
                    received[msg["device_id"]] = msg

    with running_ingest(settings), running_api(settings) as base:
        ready = threading.Event()
        watcher = threading.Thread(target=lambda: asyncio.run(watch(base, ready)))
        watcher.start()
        wait_for(ready.is_set)
        stats = simulate(target, Fleet(3, seed=7), 1.0, topic_prefix=settings.mqtt_topic_prefix,
                         count=2, speed=20.0)
        assert stats.acknowledged == 6
        wait_for(lambda: query(settings.database_url or "",
                               "SELECT count(*) FROM positions")[0][0] == 6)
        stored = {r[0]: (r[1], r[2]) for r in query(
            settings.database_url, "SELECT device_id, lat, lon FROM devices")}
        # the stream's latest position of each device is its stored last position
        wait_for(lambda: {d: (m["lat"], m["lon"]) for d, m in received.items()} == stored)
        done.set()
        watcher.join(10)
    assert sorted(received) == ["sim-0001", "sim-0002", "sim-0003"]
    for msg in received.values():
        assert -90 <= msg["lat"] <= 90 and isinstance(msg["speed"], float)


def test_shiptrack_up_runs_everything_on_embedded_defaults(tmp_path: Path) -> None:
    """The README's run command, as a user runs it: no configuration at all."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPTRACK_")}
    env |= {"SHIPTRACK_DATA_DIR": str(tmp_path), "SHIPTRACK_HTTP_PORT": str(port)}
    shiptrack = Path(sys.executable).with_name("shiptrack")
    cmd = [str(shiptrack)] if shiptrack.exists() else [sys.executable, "-m", "shiptrack"]
    proc = subprocess.Popen([*cmd, "up", "--simulate", "3"], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        token_file = tmp_path / "admin-token"
        wait_for(lambda: (token_file.exists() and _ok(base + "/readyz"))
                 or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, proc.communicate(timeout=10)[0]  # say why it stopped
        token = token_file.read_text().strip()

        async def first_positions() -> set[str]:
            seen: set[str] = set()
            url = f"ws://127.0.0.1:{port}/ws/fleet?token={token}"
            async with websockets.connect(url) as ws:
                while len(seen) < 3:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                    if msg["type"] == "position":
                        seen.add(msg["device_id"])
                    elif msg["type"] == "snapshot":
                        seen |= {d["device_id"] for d in msg["devices"]}
            return seen

        assert asyncio.run(first_positions()) == {"sim-0001", "sim-0002", "sim-0003"}
        page = httpx.get(base + "/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        if find_mosquitto() and find_plugin():
            _device_identity_is_on(base, token, tmp_path / "broker" / "mosquitto.conf")
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode in (0, 130), out
    assert "shiptrack is up" in out and "admin token" in out
    assert "device identity: on" in out or "does not enforce device identity" in out
    assert "embedded PostgreSQL stopped" in out and "embedded MQTT broker stopped" in out


def _device_identity_is_on(base: str, token: str, conf: Path) -> None:
    """`up` with mosquitto on PATH: anonymous clients refused, credentials over the API."""
    port = int(re.search(r"^listener (\d+) ", conf.read_text(), re.M)[1])  # type: ignore[index]
    assert not mqtt_connect_ok("127.0.0.1", port)
    r = httpx.post(base + "/api/v1/devices/my-tracker/credentials",
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    cred = r.json()
    assert cred["broker_url"] == f"mqtt://127.0.0.1:{port}"
    connacks: list[ReasonCode] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cred["client_id"],
                         protocol=mqtt.MQTTv5)
    client.username_pw_set(cred["username"], cred["password"])
    client.on_connect = lambda _c, _u, _f, rc, _p: connacks.append(rc)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        wait_for(lambda: connacks, timeout=10)
        assert not connacks[0].is_failure, connacks
    finally:
        client.disconnect()
        client.loop_stop()


def _ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
