"""The broker side of partitioned ingest: JetStream messages as the pipeline's
``Inbound``, with the same ``ack``/``publish`` shape as ``MqttSource``.

The worker's asyncio loop owns the NATS connection; the pipeline runs in a thread of its
own and calls ``ack`` (after the commit) and ``publish`` (live topics) from there, so both
hand their work to the loop. An ``Inbound`` of NATS carries its partition as
``generation`` and a key of this source as ``mid``; a message of a partition this worker
has dropped is never acked by it (JetStream redelivers it to the new owner).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Iterable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from ingest.mqtt_source import Inbound
from shiptrack.partitions import split_partitioned, topic_to_subject

log = logging.getLogger("shiptrack.ingest")
ACK_TIMEOUT_S = 10


class NatsSource:
    def __init__(self, nc: NATS, loop: asyncio.AbstractEventLoop) -> None:
        self.nc = nc
        self.loop = loop
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._pending: dict[int, Msg] = {}  # by Inbound.mid, until acked or given back

    def inbound(self, messages: Iterable[Msg]) -> list[Inbound]:
        """JetStream messages as a batch: per partition in stream order (so per device
        in publish order; the pipeline orders each device's fixes by time)."""
        now = time.time()
        out = []
        keyed = []
        for msg in messages:
            partition, topic = split_partitioned(msg.subject)
            keyed.append((partition, msg.metadata.sequence.stream, topic, msg))
        keyed.sort(key=lambda k: (k[0], k[1]))
        with self._lock:
            for partition, _, topic, msg in keyed:
                mid = next(self._ids)
                self._pending[mid] = msg
                out.append(Inbound(partition, mid, 1, topic, bytes(msg.data), now))
        return out

    def in_flight(self) -> list[Msg]:
        with self._lock:
            return list(self._pending.values())

    def _take(self, batch: list[Inbound]) -> list[Msg]:
        with self._lock:
            return [m for m in (self._pending.pop(i.mid, None) for i in batch) if m is not None]

    def ack(self, batch: list[Inbound]) -> int:
        """Acknowledge committed messages (from the pipeline's thread); returns how many."""
        msgs = self._take(batch)
        if msgs:
            future = asyncio.run_coroutine_threadsafe(self._ack_all(msgs), self.loop)
            try:
                future.result(ACK_TIMEOUT_S)
            except Exception as exc:  # JetStream redelivers; the database drops the copies
                log.warning("acks of %d committed messages may be lost (%s)", len(msgs), exc)
        return len(msgs)

    async def give_back(self, batch: list[Inbound]) -> None:
        """Messages not committed (the batch's partitions were lost, or the worker stops):
        a negative ack, so that the owner gets them again at once."""
        for msg in self._take(batch):
            try:
                await msg.nak()
            except Exception as exc:  # the connection is away: JetStream redelivers anyway
                log.debug("nak failed: %s", exc)

    def publish(self, topic: str, payload: bytes) -> None:
        """A live topic (core NATS: the MQTT listener's subscribers get it too)."""
        asyncio.run_coroutine_threadsafe(self.nc.publish(topic_to_subject(topic), payload),
                                         self.loop)

    async def _ack_all(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            await msg.ack()
        await self.nc.flush(ACK_TIMEOUT_S)  # the acks are on the wire before the next batch
