"""``shiptrack ingest`` in NATS mode (SHIPTRACK_INGEST_MODE=nats): one worker of several,
each device on one worker (docs/SCALING.md).

The loop: every third of the lease, renew this worker's registration and leases
(a task of its own, so that a long batch or a database outage does not lose them), and,
between batches, rebalance: the partitions rendezvous hashing gives this worker among
the live ones are taken (lease, epoch, the partition's durable consumer restarted from
its ack floor so that what a former owner left unacked comes first and in stream order,
the cached device state forgotten), the others let go. Then fetch from each owned
partition's durable consumer, run the ``Pipeline`` on the batch (in a thread: it is
synchronous) with the fence of the batch's partitions, and ack only after its commit.
A transient database error retries the same batch (nothing acked meanwhile); a lost
fence (``FenceLost``) drops those partitions, and the rest of the batch goes back to
JetStream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable

import nats
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_when_event_set,
    wait_exponential_jitter,
)

from ingest import metrics
from ingest.mqtt_source import Inbound
from ingest.nats_source import NatsSource
from ingest.ownership import Ownership, PartitionsLost, fence_for
from ingest.pipeline import Fence, FenceLost, Pipeline, is_transient
from shiptrack.config import Settings
from shiptrack.db.migrate import migrate
from shiptrack.errors import BrokerError, ConfigError
from shiptrack.partitions import (
    STREAM,
    SUBJECT_ROOT,
    consumer_name,
    owned,
    partition_subject,
)
from shiptrack.topics import route_topic

log = logging.getLogger("shiptrack.ingest")
Observer = Callable[[str, list[Inbound]], None]  # (worker id, a committed batch)
IDLE_FETCH_S = 0.5
MAX_ACK_PENDING = 20_000  # per partition


def worker_name(settings: Settings) -> str:
    raw = settings.nats_worker_id or f"{socket.gethostname()}-{os.getpid()}"
    return re.sub(r"[^A-Za-z0-9_=-]", "-", raw)[:100]


def fenced_database_url(url: str, lease_s: float) -> str:
    """The pipeline's connection: a transaction left idle longer than a lease (its
    worker stalled mid-commit) is ended by the server, so its row locks do not hold up
    the partition's next owner."""
    options = conninfo_to_dict(url).get("options") or ""
    timeout = max(1000, int(lease_s * 1000))
    return make_conninfo(url, options=f"{options} -c idle_in_transaction_session_timeout="
                                      f"{timeout}".strip())


def stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=STREAM, subjects=[f"{SUBJECT_ROOT}.*.>"], retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE, max_age=settings.nats_stream_max_age_h * 3600)


async def ensure_stream(js: JetStreamContext, settings: Settings) -> None:
    """The stream over the partition subjects (made once; devices' fixes published before
    it exists are not kept: start a worker before the devices)."""
    try:
        await js.stream_info(STREAM)
    except NotFoundError:
        await js.add_stream(stream_config(settings))


def prepare_stream(settings: Settings) -> None:
    """Make the stream now (``shiptrack up`` before any device can publish)."""
    async def prepare() -> None:
        nc = await nats.connect(settings.nats_url or "", connect_timeout=5)
        try:
            await ensure_stream(nc.jetstream(), settings)
        finally:
            await nc.close()
    asyncio.run(prepare())


def run(settings: Settings, stop: threading.Event, ready: threading.Event | None = None,
        observer: Observer | None = None) -> None:
    """Run until ``stop`` is set (same shape as ``ingest.service.run``)."""
    if not settings.database_url or not settings.nats_url:
        raise ConfigError("shiptrack ingest in nats mode needs SHIPTRACK_DATABASE_URL and "
                          "SHIPTRACK_NATS_URL")
    applied = migrate(settings.database_url)
    if applied:
        log.info("applied %d migration(s): %s", len(applied), ", ".join(applied))
    server = None
    if settings.metrics_port:
        server = metrics.serve_metrics(settings.http_host, settings.metrics_port,
                                       lambda: not stop.is_set())
    try:
        asyncio.run(Worker(settings, stop, ready, observer).main())
    finally:
        if server is not None:
            server.shutdown()


class Worker:
    def __init__(self, settings: Settings, stop: threading.Event,
                 ready: threading.Event | None, observer: Observer | None) -> None:
        self.settings = settings
        self.stop = stop
        self.ready = ready
        self.observer = observer
        self.name = worker_name(settings)
        self.tick = settings.nats_lease_s / 3
        self.subs: dict[int, JetStreamContext.PullSubscription] = {}
        self.lost: set[int] = set()  # found by the heartbeat, dropped by the loop
        self._next_sweep = 0.0
        self._next_rebalance = 0.0
        self.seen: dict[str, float] = {}  # device -> when this worker last committed it

    async def main(self) -> None:
        settings = self.settings
        assert settings.nats_url and settings.database_url
        try:
            nc = await nats.connect(settings.nats_url, name=self.name, connect_timeout=5,
                                    max_reconnect_attempts=-1, reconnect_time_wait=0.5,
                                    allow_reconnect=True)
        except Exception as exc:
            raise BrokerError(f"cannot reach NATS at {settings.nats_url}: {exc}") from exc
        self.js = nc.jetstream()
        await ensure_stream(self.js, settings)
        self.ownership = Ownership(self.js, self.name, settings.nats_lease_s,
                                   settings.database_url)
        await self.ownership.open()
        await self.ownership.register()
        self.source = NatsSource(nc, asyncio.get_running_loop())
        self.pipeline = Pipeline(settings, self.source,  # type: ignore[arg-type]
                                 fenced_database_url(settings.database_url,
                                                     settings.nats_lease_s))
        self.retrying = Retrying(
            retry=retry_if_exception(is_transient),
            wait=wait_exponential_jitter(multiplier=0.2, max=5),
            stop=stop_when_event_set(self.stop),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )
        heartbeat = asyncio.create_task(self._heartbeat())
        log.info("ingest worker %s running on %s (%d partitions)", self.name,
                 settings.nats_url, settings.partitions)
        busy = False
        try:
            while not self.stop.is_set():
                await self._rebalance()
                if self.ready is not None:
                    self.ready.set()
                await self._sweep()
                msgs = await self._fetch(settings.ingest_batch_ms / 1000 if busy
                                         else IDLE_FETCH_S)
                busy = bool(msgs)
                if msgs:
                    await self._process(msgs)
        finally:
            heartbeat.cancel()
            await self._leave(nc.is_connected)
            await asyncio.to_thread(self.pipeline.close)
            try:  # bounded: a broker that is away must not hold the exit up
                await asyncio.wait_for(nc.drain(), self.settings.nats_lease_s)
            except Exception as exc:
                log.debug("drain: %s", exc)
                with contextlib.suppress(Exception):
                    await nc.close()
            log.info("ingest worker %s stopped", self.name)

    # -- ownership ---------------------------------------------------------------------

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            try:
                await self.ownership.register()
                self.lost |= await self.ownership.refresh()
                for msg in self.source.in_flight():  # a batch waiting for the database
                    with contextlib.suppress(Exception):  # acked meanwhile
                        await msg.in_progress()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the broker is away: the leases lapse, or not
                log.warning("heartbeat of %s failed: %s", self.name, exc)

    async def _rebalance(self) -> None:
        if self.lost:
            lost, self.lost = self.lost, set()
            await self._drop(lost)
        if time.monotonic() < self._next_rebalance:
            return
        self._next_rebalance = time.monotonic() + self.tick
        try:
            live = await self.ownership.live_workers() | {self.name}
        except Exception as exc:
            log.warning("cannot list the live workers: %s", exc)
            return
        want = owned(self.name, self.settings.partitions, live)
        held = set(self.ownership.held)
        for partition in sorted(held - want):
            await self._unsubscribe(partition)
        await self.ownership.release(held - want)
        if held - want:
            self.pipeline.forget()  # no state of devices now another worker's is kept
            self.seen.clear()
        taken = []
        for partition in sorted(want - held):
            if await self.ownership.try_acquire(partition):
                try:
                    self.subs[partition] = await self._take_over(partition)
                    taken.append(partition)
                except Exception as exc:
                    log.warning("cannot open partition %d: %s", partition, exc)
                    await self.ownership.release([partition])
        if taken:
            self.pipeline.forget()  # state of the new devices: loaded from the database
            self.seen.clear()
            log.info("%s took partitions %s (now %d)", self.name, taken, len(self.subs))
        if held - want:
            log.info("%s let go of partitions %s", self.name, sorted(held - want))

    async def _take_over(self, partition: int) -> JetStreamContext.PullSubscription:
        """The partition's durable consumer, restarted from its ack floor: what a former
        owner fetched but did not ack comes again first, in stream order."""
        name = consumer_name(partition)
        start = 1
        try:
            info = await self.js.consumer_info(STREAM, name)
            start = info.ack_floor.stream_seq + 1 if info.ack_floor else 1
            await self.js.delete_consumer(STREAM, name)
        except NotFoundError:
            pass
        await self.js.add_consumer(STREAM, ConsumerConfig(
            durable_name=name, filter_subject=partition_subject(partition),
            ack_policy=AckPolicy.EXPLICIT, ack_wait=self.settings.nats_ack_wait_s,
            max_ack_pending=MAX_ACK_PENDING, max_deliver=-1,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=max(1, start)))
        return await self.js.pull_subscribe_bind(durable=name, stream=STREAM)

    async def _unsubscribe(self, partition: int) -> None:
        sub = self.subs.pop(partition, None)
        if sub is not None:
            try:
                await sub.unsubscribe()
            except Exception as exc:
                log.debug("unsubscribe p%d: %s", partition, exc)

    async def _drop(self, partitions: set[int]) -> None:
        """Partitions another worker holds now: stop reading them, forget their state."""
        for partition in partitions:
            await self._unsubscribe(partition)
        self.ownership.drop(partitions)
        self.pipeline.forget()
        self.seen.clear()
        log.warning("%s dropped partitions %s", self.name, sorted(partitions))

    async def _leave(self, connected: bool) -> None:
        """Let go of everything at once (the others take over without waiting for the
        leases to lapse); with the broker away, the leases lapse instead."""
        if not connected:
            self.subs.clear()
            return
        try:
            async with asyncio.timeout(self.settings.nats_lease_s):
                for partition in list(self.subs):
                    await self._unsubscribe(partition)
                await self.ownership.release(list(self.ownership.held))
                await self.ownership.deregister()
        except Exception as exc:  # the broker went away meanwhile: the leases lapse
            log.warning("%s left without releasing its leases: %s", self.name, exc)

    # -- the batch ---------------------------------------------------------------------

    async def _fetch(self, wait_s: float) -> list[Msg]:
        if not self.subs:
            await asyncio.sleep(IDLE_FETCH_S)
            return []
        per = max(1, self.settings.ingest_batch_size // len(self.subs))
        parts = await asyncio.gather(*(self._fetch_one(p, s, per, wait_s)
                                       for p, s in self.subs.items()))
        return [m for part in parts for m in part]

    async def _fetch_one(self, partition: int, sub: JetStreamContext.PullSubscription,
                         n: int, wait_s: float) -> list[Msg]:
        try:
            return await sub.fetch(n, timeout=wait_s)
        except (TimeoutError, NatsTimeout):
            return []
        except Exception as exc:  # e.g. its consumer restarted by a new owner: the
            log.warning("fetch from partition %d failed: %s", partition, exc)  # lease tells
            return []

    async def _process(self, msgs: list[Msg]) -> None:
        batch = self.source.inbound(msgs)
        epochs = self.ownership.epochs({m.generation for m in batch})
        stale = [m for m in batch if m.generation not in epochs]
        if stale:  # fetched just before its partition was dropped
            await self.source.give_back(stale)
            batch = [m for m in batch if m.generation in epochs]
        if not batch:
            return
        fence = fence_for(epochs)
        self._forget_silent(batch)
        try:
            await asyncio.to_thread(self._commit, batch, fence)
        except FenceLost as exc:
            lost = exc.partitions if isinstance(exc, PartitionsLost) else set(epochs)
            log.warning("%s: %s; the batch is given back", self.name, exc)
            await self.source.give_back(batch)
            await self._drop(lost)
            return
        except Exception as exc:
            await self.source.give_back(batch)
            if self.stop.is_set() and is_transient(exc):
                return  # stopping while the database is away: redelivered later
            raise
        now = time.monotonic()
        for device in self._devices(batch):
            self.seen[device] = now
        if self.observer is not None:
            self.observer(self.name, batch)

    def _devices(self, batch: list[Inbound]) -> set[str]:
        prefix = self.settings.mqtt_topic_prefix
        return {r.device_id for r in (route_topic(m.topic, prefix) for m in batch) if r.valid}

    def _forget_silent(self, batch: list[Inbound]) -> None:
        """The offline sweep runs on one worker (partition 0's owner) and writes the
        offline state of every silent device: a device this worker has not seen for half
        of SHIPTRACK_OFFLINE_AFTER_S has its state reloaded from the database, so that
        its next fix sends device.online after the sweeper's device.offline."""
        horizon = time.monotonic() - self.settings.offline_after_s / 2
        silent = [d for d in self._devices(batch) if self.seen.get(d, horizon) <= horizon]
        if silent:
            self.pipeline.forget(silent)

    def _commit(self, batch: list[Inbound], fence: Fence) -> None:
        self.retrying(self.pipeline.process, batch, fence)
        metrics.INBOX.set(0)

    async def _sweep(self) -> None:
        """The offline sweep, on one worker only: the owner of partition 0."""
        if 0 not in self.ownership.held or time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + self.settings.tracking_sweep_s
        try:
            await asyncio.to_thread(self.pipeline.sweep)
        except Exception as exc:
            log.warning("tracking sweep skipped: %s", exc)
