"""``shiptrack relay``: device fixes from any MQTT broker (MQTT 5 devices, very large
fleets) into the JetStream partitions of NATS mode, each acked to the broker only once
JetStream has acknowledged it (docs/SCALING.md, "The MQTT 5 edge").

The MQTT side is ingest's own ``MqttSource`` (MQTT 5, persistent session, QoS 1, manual
acks: a PUBACK goes out only when :meth:`MqttSource.ack` is called), with a client id of
its own (``SHIPTRACK_RELAY_CLIENT_ID``). Each message is published to the subject
nats-server's mappings would have stored a direct MQTT publish under
(:func:`shiptrack.partitions.partitioned_subject`), so the stream holds it exactly as the
NATS MQTT listener would and the workers need no change. Its ``Nats-Msg-Id`` is a hash of
topic and payload (:func:`message_id`): a message redelivered by the broker after a relay
crash (published, not yet acked) is dropped by JetStream's duplicate window (2 min), and
past that by the database's own idempotence.

A topic that makes no partitioned subject names no device: it is acked, logged and
counted (``shiptrack_relay_bad_topics``), never relayed. Malformed payloads are relayed:
the worker's decode dead-letters them as it does for a direct publish. Both sides
reconnect with backoff (paho's reconnect; nats-py's, and the first connect retried); a
publish JetStream does not acknowledge is retried with backoff and its message stays
unacked meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from dataclasses import dataclass

import nats
from nats.aio.client import Client as NATS
from nats.js.client import JetStreamContext
from prometheus_client import Counter

from ingest import metrics
from ingest.mqtt_source import Inbound, MqttSource
from ingest.partitioned import ensure_stream
from ingest.service import subscriptions
from shiptrack.config import Settings
from shiptrack.errors import ConfigError
from shiptrack.mqtturl import parse_mqtt_url
from shiptrack.partitions import partitioned_subject

log = logging.getLogger("shiptrack.relay")

BATCH = 1000  # messages taken from the broker and published to JetStream at once
PUBLISH_TIMEOUT_S = 5.0  # a JetStream publish ack not back in this is retried
RETRY_MAX_S = 5.0

RELAYED = Counter("shiptrack_relay_messages_relayed",
                  "MQTT messages stored in JetStream and then acked to the broker")
DUPLICATES = Counter("shiptrack_relay_messages_duplicate",
                     "Relayed messages JetStream already had (a redelivery)")
BAD_TOPICS = Counter("shiptrack_relay_bad_topics",
                     "MQTT messages on a topic that names no device (acked, not relayed)")
PUBLISH_ERRORS = Counter("shiptrack_relay_publish_errors",
                         "JetStream publishes not acknowledged (retried)")


def message_id(topic: str, payload: bytes) -> str:
    """The ``Nats-Msg-Id`` of an MQTT message: the same for every redelivery of it."""
    return hashlib.blake2b(topic.encode() + b"\x00" + payload, digest_size=16).hexdigest()


@dataclass
class RelayStats:
    """What this relay did (its counters; the Prometheus ones are per process)."""

    relayed: int = 0
    duplicates: int = 0
    bad_topics: int = 0
    publish_errors: int = 0
    acked: int = 0


def run(settings: Settings, stop: threading.Event, ready: threading.Event | None = None,
        stats: RelayStats | None = None) -> None:
    """Relay until ``stop`` is set. ``ready`` is set once JetStream is reachable and the
    broker has accepted the subscriptions."""
    if not settings.mqtt_url or not settings.nats_url:
        raise ConfigError("shiptrack relay needs SHIPTRACK_MQTT_URL (the devices' broker) "
                          "and SHIPTRACK_NATS_URL (NATS JetStream)")
    server = None
    if settings.metrics_port:
        server = metrics.serve_metrics(settings.http_host, settings.metrics_port,
                                       lambda: not stop.is_set())
    try:
        asyncio.run(Relay(settings, stop, ready, stats or RelayStats()).main())
    finally:
        if server is not None:
            server.shutdown()


class Relay:
    def __init__(self, settings: Settings, stop: threading.Event,
                 ready: threading.Event | None, stats: RelayStats) -> None:
        self.settings = settings
        self.stop = stop
        self.ready = ready
        self.stats = stats
        self.target = parse_mqtt_url(settings.mqtt_url or "")  # a bad URL: ConfigError now

    async def main(self) -> None:
        settings = self.settings
        nc = await self._connect()
        if nc is None:
            return  # stopped before NATS was reachable
        js = nc.jetstream(timeout=PUBLISH_TIMEOUT_S)
        source = MqttSource(self.target, settings.relay_client_id,
                            subscriptions(settings), settings.ingest_receive_maximum)
        source.start()
        log.info("relay running: %s -> %s", ", ".join(source.filters), settings.nats_url)
        try:
            while not self.stop.is_set():
                batch = await asyncio.to_thread(source.next_batch, BATCH,
                                                settings.ingest_batch_ms / 1000)
                if self.ready is not None and source.subscribed.is_set():
                    self.ready.set()
                if batch:
                    await self._relay(js, source, batch)
        finally:
            source.stop()
            try:
                await asyncio.wait_for(nc.drain(), PUBLISH_TIMEOUT_S)
            except Exception as exc:  # NATS away: nothing of ours is pending on it
                log.debug("drain: %s", exc)
                with contextlib.suppress(Exception):
                    await nc.close()
            log.info("relay stopped")

    async def _connect(self) -> NATS | None:
        """NATS with the stream in place. nats-py retries an unreachable server itself
        (every 0.5 s, forever); a stop meanwhile cancels the attempt."""
        async def quiet(exc: Exception) -> None:
            log.warning("NATS at %s: %s", self.settings.nats_url, exc or type(exc).__name__)

        async def connect() -> NATS:
            nc = await nats.connect(self.settings.nats_url or "", name="shiptrack-relay",
                                    connect_timeout=5, allow_reconnect=True,
                                    max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                    error_cb=quiet)
            delay = 0.2
            while True:
                try:
                    await ensure_stream(nc.jetstream(), self.settings)
                    return nc
                except Exception as exc:
                    log.warning("cannot make the stream (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

        attempt = asyncio.create_task(connect())
        while not self.stop.is_set():
            await asyncio.wait({attempt}, timeout=0.2)
            if attempt.done():
                return attempt.result()
        attempt.cancel()
        with contextlib.suppress(BaseException):
            await attempt
        return None

    async def _relay(self, js: JetStreamContext, source: MqttSource,
                     batch: list[Inbound]) -> None:
        """Publish the batch to JetStream, acking each message to the broker once its
        publish is acknowledged; the failed ones are retried until they are or the relay
        stops (then they stay unacked: the broker redelivers them to the next relay)."""
        prefix, partitions = self.settings.mqtt_topic_prefix, self.settings.partitions
        pending: list[tuple[Inbound, str]] = []
        bad: list[Inbound] = []
        for message in batch:
            subject = partitioned_subject(message.topic, prefix, partitions)
            if subject is None:
                bad.append(message)
            else:
                pending.append((message, subject))
        if bad:
            log.warning("%d message(s) on topics that name no device, not relayed (e.g. %r)",
                        len(bad), bad[0].topic)
            self.stats.bad_topics += len(bad)
            BAD_TOPICS.inc(len(bad))
            self.stats.acked += source.ack(bad)
        delay = 0.2
        while pending:
            results = await asyncio.gather(
                *(js.publish(subject, m.payload,
                             headers={"Nats-Msg-Id": message_id(m.topic, m.payload)})
                  for m, subject in pending),
                return_exceptions=True)
            done, failed, duplicates = [], [], 0
            for item, result in zip(pending, results, strict=True):
                if isinstance(result, BaseException):
                    failed.append(item)
                else:
                    done.append(item[0])
                    duplicates += bool(result.duplicate)
            self.stats.relayed += len(done)
            self.stats.duplicates += duplicates
            RELAYED.inc(len(done))
            DUPLICATES.inc(duplicates)
            if done:
                self.stats.acked += source.ack(done)
            pending = failed
            if not pending:
                return
            error = next(r for r in results if isinstance(r, BaseException))
            self.stats.publish_errors += len(pending)
            PUBLISH_ERRORS.inc(len(pending))
            log.warning("JetStream did not acknowledge %d message(s) (%s: %s); retrying in "
                        "%.1f s, unacked meanwhile", len(pending), type(error).__name__,
                        error, delay)
            if await asyncio.to_thread(self.stop.wait, delay):
                return  # stopping: the rest stays unacked
            delay = min(delay * 2, RETRY_MAX_S)
