"""What a Mosquitto crash loses: QoS 1 messages the broker acknowledged (PUBACK) and queued
for an offline persistent session (ingest down or behind), then SIGKILL, restart, and
count what the session still gets. Once per autosave setting.

    python -m bench.broker_crash [--messages 2000] [--runs 3]

Mosquitto keeps its state in memory and writes it to mosquitto.db on autosave and on a
clean shutdown; a SIGKILL (or power loss) loses what changed since the last save. Each
run starts the project's durability config (deploy/mosquitto/conf.d/durability.conf) with
its autosave lines replaced by the setting under test. Prints one table: messages lost
(median of the runs) and the publish rate relative to the first setting.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from shiptrack.embedded import free_port, mqtt_connect_ok

CONF_D = Path(__file__).resolve().parents[1] / "deploy" / "mosquitto" / "conf.d"
SETTINGS = {
    "interval 60 s (time)": ["autosave_interval 60"],
    "interval 1 s (time)": ["autosave_interval 1"],
    "on changes, 10000": ["autosave_on_changes true", "autosave_interval 10000"],
    "on changes, 1000": ["autosave_on_changes true", "autosave_interval 1000"],
    "on changes, 100": ["autosave_on_changes true", "autosave_interval 100"],
    "on changes, 1": ["autosave_on_changes true", "autosave_interval 1"],
}
TOPIC = "bench/crash"


def config(workdir: Path, port: int, autosave: list[str]) -> Path:
    durability = (CONF_D / "durability.conf").read_text()
    durability = re.sub(r"^autosave_\w+ .*$\n?", "", durability, flags=re.M)
    lines = [f"listener {port} 127.0.0.1", "allow_anonymous true",
             f"persistence_location {workdir}/", durability, *autosave]
    if os.geteuid() == 0:
        lines.insert(0, "user root")
    path = workdir / "mosquitto.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def start(binary: str, conf: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not mqtt_connect_ok("127.0.0.1", port, timeout=1.0):
        if time.monotonic() > deadline:
            raise RuntimeError("mosquitto did not start")
        time.sleep(0.05)
    return proc


def session(port: int, client_id: str) -> tuple[mqtt.Client, list[bytes]]:
    """A persistent MQTT 5 session subscribed to TOPIC; returns the client and its inbox."""
    got: list[bytes] = []
    ready = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    client.on_message = lambda _c, _u, m: got.append(m.payload)
    client.on_subscribe = lambda *a: ready.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    client.subscribe(TOPIC, options=SubscribeOptions(qos=1))
    ready.wait(10)
    return client, got


def publish(port: int, count: int) -> float:
    """Publish ``count`` QoS 1 messages, wait for every PUBACK; returns messages/s."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    t0 = time.perf_counter()
    for block in range(0, count, 10_000):  # paho holds at most 65,535 unacknowledged
        infos = [client.publish(TOPIC, f"m{k}".encode(), qos=1)
                 for k in range(block, min(count, block + 10_000))]
        for info in infos:
            info.wait_for_publish(60)
    rate = count / (time.perf_counter() - t0)
    client.disconnect()
    client.loop_stop()
    return rate


def one_run(binary: str, autosave: list[str], count: int) -> tuple[int, float]:
    with tempfile.TemporaryDirectory(prefix="shiptrack-crash-") as tmp:
        workdir, port = Path(tmp), free_port()
        conf = config(workdir, port, autosave)
        proc = start(binary, conf, port)
        client_id = f"ingest-{uuid.uuid4().hex[:8]}"
        sub, _ = session(port, client_id)
        sub.disconnect()  # offline: the broker queues for the session
        sub.loop_stop()
        rate = publish(port, count)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc = start(binary, conf, port)
        try:
            sub, got = session(port, client_id)
            marker = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
            marker.connect("127.0.0.1", port)
            marker.loop_start()
            marker.publish(TOPIC, b"marker", qos=1).wait_for_publish(10)
            deadline = time.monotonic() + 30
            while b"marker" not in got and time.monotonic() < deadline:
                time.sleep(0.02)  # the marker comes after everything still queued
            marker.disconnect()
            marker.loop_stop()
            sub.disconnect()
            sub.loop_stop()
            received = len({p for p in got if p != b"marker"})
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)
        return count - received, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", action="append", help="settings to run (default: all)")
    args = parser.parse_args()
    binary = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
    if binary is None:
        raise SystemExit("no mosquitto binary")
    rows = []
    for name, autosave in SETTINGS.items():
        if args.only and name not in args.only:
            continue
        runs = [one_run(binary, autosave, args.messages) for _ in range(args.runs)]
        rows.append((name, statistics.median(r[0] for r in runs),
                     statistics.median(r[1] for r in runs)))
    base = rows[0][2]
    print(f"{args.messages} PUBACKed QoS 1 messages queued for an offline session, SIGKILL, "
          f"restart ({args.runs} runs, median)")
    print(f"{'autosave':28} {'lost':>6} {'publish rate (vs first)':>24}")
    for name, lost, rate in rows:
        print(f"{name:28} {lost:6.0f} {rate / base:23.2f}x")


if __name__ == "__main__":
    main()
