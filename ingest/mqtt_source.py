"""The broker side of ingest: a paho-mqtt client with a persistent session and manual
acknowledgement.

Messages are queued as they arrive; the pipeline takes them in batches and calls
``ack`` only after the batch is committed. A message received on an earlier connection
is never acknowledged on a later one (packet ids are per connection): after a
reconnect the broker redelivers it and the database drops the duplicate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from shiptrack.mqtturl import MqttTarget

log = logging.getLogger("shiptrack.ingest")

SESSION_EXPIRY_S = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Inbound:
    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    received: float


class MqttSource:
    def __init__(
        self,
        target: MqttTarget,
        client_id: str,
        filters: list[str],
        receive_maximum: int,
    ) -> None:
        self.target = target
        self.filters = filters
        self.receive_maximum = receive_maximum
        self._inbox: deque[Inbound] = deque()
        self._wakeup = threading.Event()
        self._generation = 0
        self._lock = threading.Lock()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if target.username:
            client.username_pw_set(target.username, target.password)
        if target.tls:
            client.tls_set()
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self.client = client

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        props.ReceiveMaximum = self.receive_maximum
        self.client.connect_async(
            self.target.host, self.target.port, keepalive=30, clean_start=False,
            properties=props,
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # -- paho callbacks (network thread) -----------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags,
        reason: ReasonCode, properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.warning("broker refused the connection: %s", reason)
            return
        with self._lock:
            self._generation += 1
        log.info("connected to %s (session present: %s)", self.target.url, flags.session_present)
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in self.filters])
        self.connected.set()

    def _on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            log.error("broker refused subscriptions %s: %s", self.filters, failed)
            return
        self.subscribed.set()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags,
        reason: ReasonCode, properties: Properties | None,
    ) -> None:
        with self._lock:
            self._generation += 1  # nothing received before this may be acked any more
        self.connected.clear()
        self.subscribed.clear()
        if reason.value != 0:
            log.warning("disconnected from broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.append(
            Inbound(self._generation, msg.mid, msg.qos, msg.topic, bytes(msg.payload), time.time())
        )
        if not self._wakeup.is_set():
            self._wakeup.set()

    # -- pipeline side -------------------------------------------------------------------

    def pending(self) -> int:
        return len(self._inbox)

    def next_batch(self, max_items: int, max_wait_s: float, idle_s: float = 0.5) -> list[Inbound]:
        """Up to ``max_items`` messages, once the oldest waiting one has waited
        ``max_wait_s`` (time spent while the previous batch was being stored counts).
        Empty after ``idle_s`` with nothing."""
        if not self._inbox:
            self._wakeup.clear()
            if not self._inbox and not self._wakeup.wait(idle_s):
                return []
        deadline = self._inbox[0].received + max_wait_s
        while len(self._inbox) < max_items and time.time() < deadline:
            time.sleep(min(0.002, max_wait_s))
        batch: list[Inbound] = []
        inbox = self._inbox
        for _ in range(min(max_items, len(inbox))):
            batch.append(inbox.popleft())
        return batch

    def ack(self, batch: list[Inbound]) -> int:
        """Acknowledge committed messages of the current connection; returns how many."""
        acked = 0
        for m in batch:
            # re-read per message: a disconnect bumps the generation from paho's thread
            if m.qos > 0 and m.generation == self._generation:
                self.client.ack(m.mid, m.qos)
                acked += 1
        return acked

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=0)
