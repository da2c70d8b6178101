"""Publishing a fleet's fixes to an MQTT broker at a steady pace (QoS 1, paho-mqtt 2).

MQTT 3.1.1 on purpose: the embedded Python broker used by ``shiptrack up`` speaks only
3.1.1, and the simulator needs nothing from MQTT 5.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from shiptrack.errors import BrokerError
from shiptrack.mqtturl import MqttTarget
from simulator.clock import SimClock
from simulator.fleet import Fleet

log = logging.getLogger("shiptrack.simulator")

CONNECT_TIMEOUT_S = 10.0
DRAIN_TIMEOUT_S = 10.0
MAX_INFLIGHT = 1000  # far below the 65,535 packet ids QoS 1 can have outstanding
PROGRESS_EVERY_S = 10.0
MAX_OUTSTANDING = 20_000


class SimulatorError(BrokerError):
    """The simulator could not reach or use the broker."""


@dataclass(frozen=True, slots=True)
class Stats:
    sent: int
    acknowledged: int
    elapsed: float
    failed: int = 0
    interrupted: bool = False

    @property
    def rate(self) -> float:
        """Messages sent per wall-clock second."""
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0


class _Acks:
    """Counts broker acknowledgements, written from paho's network thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.connected = threading.Event()
        self.refused: ReasonCode | None = None

    def on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        if rc.is_failure:
            self.refused = rc
            log.error("broker refused the connection: %s", rc)
        else:
            log.info("connected to the broker")
        self.connected.set()

    def on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        if rc.is_failure:
            log.warning("disconnected from the broker (%s); paho reconnects", rc)

    def on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, rc: ReasonCode, props: Any
    ) -> None:
        if not rc.is_failure:
            with self._lock:
                self.count += 1


def connect(target: MqttTarget, acks: _Acks) -> mqtt.Client:
    """A started paho client connected to ``target``; raises ``SimulatorError`` if not."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"shiptrack-sim-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv311,
    )
    if target.username is not None:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        client.tls_set()
    client.max_inflight_messages_set(MAX_INFLIGHT)
    client.on_connect = acks.on_connect
    client.on_disconnect = acks.on_disconnect
    client.on_publish = acks.on_publish
    try:
        client.connect(target.host, target.port, keepalive=30)
    except OSError as exc:
        raise SimulatorError(f"cannot connect to MQTT broker {target.url}: {exc}") from exc
    client.loop_start()
    if not acks.connected.wait(CONNECT_TIMEOUT_S) or acks.refused is not None:
        client.loop_stop()
        reason = acks.refused or "timed out"
        raise SimulatorError(f"cannot connect to MQTT broker {target.url}: {reason}")
    return client


class _Session:
    """One connected run: publishes ticks of the fleet and counts what went out."""

    def __init__(self, client: mqtt.Client, acks: _Acks, fleet: Fleet, topic_prefix: str,
                 qos: int = 1) -> None:
        self.client = client
        self.acks = acks
        self.fleet = fleet
        self.topic_prefix = topic_prefix
        self.qos = qos
        self.sent = 0
        self.failed = 0

    def publish_tick(self, now: datetime) -> None:
        for topic_tail, payload in self.fleet.tick(now):
            self._wait_for_room()
            topic = self.topic_prefix + topic_tail
            info = self.client.publish(topic, payload, qos=self.qos)
            # NO_CONN: paho keeps QoS 1 messages and sends them after reconnecting.
            if info.rc in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
                self.sent += 1
            else:
                self.failed += 1
                log.warning("publish to %s failed: %s", topic, mqtt.error_string(info.rc))

    def _wait_for_room(self) -> None:
        """Backpressure: at most ``MAX_OUTSTANDING`` unacknowledged (paho's message ids are
        16 bits; beyond 65,535 outstanding it refuses with "queue full")."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while self.sent - self.acks.count >= MAX_OUTSTANDING and time.monotonic() < deadline:
            time.sleep(0.001)

    def loop(
        self,
        started: float,
        clock: SimClock,
        duration_s: float | None,
        count: int | None,
        stop: threading.Event,
        on_tick: Callable[[datetime], None] | None = None,
    ) -> None:
        """Publish tick after tick on a fixed wall-clock schedule; late ticks catch up."""
        tick = 0
        next_progress = started + PROGRESS_EVERY_S
        while count is None or tick < count:
            due = started + clock.wall_offset(tick)
            late = max(due, time.monotonic())  # CPU-bound at a high speed-up: behind schedule
            if duration_s is not None and late - started >= duration_s:
                stop.wait(max(0.0, started + duration_s - time.monotonic()))
                return
            if stop.wait(max(0.0, due - time.monotonic())):
                return
            now = clock.sim_time(tick)
            self.publish_tick(now)
            if on_tick is not None:
                on_tick(now)
            tick += 1
            if clock.finished(tick) or stop.is_set():
                return
            if time.monotonic() >= next_progress:
                next_progress += PROGRESS_EVERY_S
                log.info("tick %d: %d sent, %d acknowledged", tick, self.sent, self.acks.count)

    def drain(self) -> None:
        """Wait (bounded) until the broker acknowledged everything sent."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        try:
            while self.acks.count < self.sent and time.monotonic() < deadline:
                time.sleep(0.02)
        except KeyboardInterrupt:
            pass
        if self.acks.count < self.sent:
            log.warning("%d fixes not acknowledged", self.sent - self.acks.count)


def run(
    target: MqttTarget,
    fleet: Fleet,
    interval_s: float,
    topic_prefix: str = "",
    duration_s: float | None = None,
    count: int | None = None,
    speed: float = 1.0,
    stop_event: threading.Event | None = None,
    start_time: datetime | None = None,
    qos: int = 1,
    on_tick: Callable[[datetime], None] | None = None,
    until: Callable[[], bool] | None = None,
) -> Stats:
    """Tick the fleet every ``interval_s / speed`` wall seconds and publish what it sends.

    Simulated time starts at ``start_time`` (default: now, UTC) and advances ``interval_s``
    per tick, but never runs ahead of the wall clock (``SimClock``). ``on_tick(now)`` runs
    after each tick. Stops after ``duration_s`` wall seconds, ``count`` ticks, once
    ``until()`` is true, when ``stop_event`` is set, or on Ctrl-C; then waits up to
    ``DRAIN_TIMEOUT_S`` for outstanding acks and disconnects.
    """
    if interval_s <= 0 or speed <= 0:
        raise ValueError("interval_s and speed must be positive")
    stop = threading.Event() if stop_event is None else stop_event
    acks = _Acks()
    session = _Session(connect(target, acks), acks, fleet, topic_prefix, qos)
    real_start = datetime.now(UTC)
    clock = SimClock(start_time or real_start, interval_s, speed, real_start, until)
    started = time.monotonic()
    interrupted = False
    try:
        session.loop(started, clock, duration_s, count, stop, on_tick)
    except KeyboardInterrupt:
        interrupted = True
        log.info("interrupted; stopping")
    finally:
        session.drain()
        session.client.disconnect()
        session.client.loop_stop()
    stats = Stats(session.sent, acks.count, time.monotonic() - started, session.failed, interrupted)
    log.info(
        "published %d fixes, %d acknowledged, in %.1f s",
        stats.sent,
        stats.acknowledged,
        stats.elapsed,
    )
    return stats
