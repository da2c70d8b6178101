"""The data path of ingest, one batch at a time:

    broker messages -> decode (by topic) -> outliers / live position -> load what
    tracking reads (``ingest.loader``) -> tracking and the ETA stage (pure, over the
    batch's ``TrackingView``) -> one ``Batch`` of results written by ``BatchStore`` in
    one transaction (positions, devices, dead letters, milestones, events, exceptions,
    tracking state, ETAs; then the caller's ``fence``) -> commit -> the caches take the
    committed results -> ack to the broker -> republish the live fixes and new events

Decoding, outliers, tracking and the ETA stage are pure; ``Pipeline`` owns the
connection, the transaction and the order of the side effects, so that a message is
acknowledged only once what it carried is committed, and an event is published only
once it is stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import msgspec
import psycopg

from ingest import metrics
from ingest.eta_stage import EtaOutcome, EtaStage
from ingest.loader import Caches, Loader
from ingest.mqtt_source import Inbound
from ingest.outliers import DeviceTrack, Rules, advance, seed
from ingest.store import Batch, BatchStore, Written
from ingest.tracking import MilestoneOp, Outcome, Tracker, TrackingConfig, TrackingView
from shiptrack.config import Settings
from shiptrack.decode import Decoded, decode_position
from shiptrack.errors import ShiptrackError
from shiptrack.events import Event, encode_events
from shiptrack.fix import Fix
from shiptrack.owntracks import decode_owntracks
from shiptrack.scans import Scan, decode_scans
from shiptrack.shipments import FINAL
from shiptrack.topics import LIVE_ETA, LIVE_EVENTS, LIVE_POSITIONS, route_topic

log = logging.getLogger("shiptrack.ingest")
_encoder = msgspec.json.Encoder()
Conn = psycopg.Connection[Any]
Fence = Callable[[Conn], None]
T = TypeVar("T")


class Source(Protocol):
    """Where batches come from (``ingest.mqtt_source.MqttSource``, or any other broker's
    with the same shape): acknowledged once committed; republished to after."""

    def ack(self, batch: list[Inbound]) -> object: ...

    def publish(self, topic: str, payload: bytes) -> None: ...


class FenceLost(ShiptrackError):
    """Raised by a ``fence``: this process may no longer commit for the batch's devices
    (another owns them now). The batch is rolled back, nothing of it is acknowledged,
    published or dead-lettered, and the pipeline forgets its cached per-device state."""


class _FenceFailed(ShiptrackError):
    """A fence raised something else: not about the batch's content (never retried
    message by message, never dead-lettered); ``process`` closes the connection and
    raises the original (a transient database error is retried by the caller)."""


@dataclass(slots=True)
class DecodedBatch(Decoded):
    scans: list[Scan] = field(default_factory=list)


def decode_batch(batch: list[Inbound], prefix: str, max_bytes: int,
                 now: datetime) -> DecodedBatch:
    """Every message of a batch, routed by its topic; bad input becomes rejections."""
    out = DecodedBatch()
    for m in batch:
        route = route_topic(m.topic, prefix)
        if not route.valid:
            reason = {"unknown": "unknown_topic", "scan": "bad_scanner_id"}.get(
                route.kind, "bad_device_id")
            what = "scanner" if route.kind == "scan" else "device"
            out.reject(reason, f"topic {m.topic[:200]!r} names no valid {what}", m.topic,
                       m.payload)
            continue
        if route.kind == "position":
            part = decode_position(route.device_id, m.topic, m.payload, now, max_bytes)
        elif route.kind == "owntracks":
            part = decode_owntracks(route.device_id, m.topic, m.payload, now, max_bytes)
        elif route.kind == "scan":
            scans = decode_scans(route.device_id, m.topic, m.payload, now, max_bytes)
            out.scans.extend(scans.scans)
            out.rejections.extend(scans.rejections)
            continue
        else:
            out.reject("unsupported_topic", f"{route.kind} messages are not handled yet",
                       m.topic, m.payload)
            continue
        out.fixes.extend(part.fixes)
        out.rejections.extend(part.rejections)
    return out


# A live message stays well under the broker's max_packet_size (1 MiB in the project's
# Mosquitto config): a larger one makes the broker drop ingest's connection.
LIVE_MAX_BYTES = 256 * 1024


def live_payloads(items: Sequence[T], encode: Callable[[Sequence[T]], bytes],
                  limit: int = LIVE_MAX_BYTES) -> Iterator[bytes]:
    """The republished payloads (README, live topics): ``encode(items)``, a JSON array,
    split in order into as many arrays as it takes for each to fit in ``limit`` bytes
    (one item larger than that goes alone)."""
    payload = encode(items)
    if len(payload) <= limit or len(items) <= 1:
        yield payload
        return
    size = -(-len(items) // (len(payload) // limit + 1))  # parts of about limit bytes
    for i in range(0, len(items), size):
        yield from live_payloads(items[i:i + size], encode, limit)


class Pipeline:
    """Owns the database connection of ingest and the batch's transaction; ``process``
    raises only transient database errors (the caller reconnects and retries the same
    batch), ``FenceLost``, and what a fence raised."""

    def __init__(self, settings: Settings, source: Source, database_url: str) -> None:
        self.settings = settings
        self.source = source
        self.database_url = database_url
        self.conn: Conn | None = None
        self.store: BatchStore | None = None
        self.loader: Loader | None = None
        self.last: dict[str, DeviceTrack] = {}  # the outlier filter's state, per device
        self.outlier_rules = Rules(settings.max_speed_kmh / 3.6, settings.outlier_confirm_fixes)
        self.tracker = Tracker(TrackingConfig.from_settings(settings))
        self._caches = Caches()
        self.eta = EtaStage.from_settings(settings)

    def connect(self) -> tuple[BatchStore, Loader]:
        if self.store is None or self.loader is None:
            conn = psycopg.connect(self.database_url, connect_timeout=5, autocommit=True)
            self.conn = conn
            self.store = BatchStore(conn)
            self.loader = Loader(conn, self._caches, self.settings.route_corridor_m,
                                 self.settings.sensor_excursion_s,
                                 self.settings.tracking_reload_s)
            self._reload(force=True)
        return self.store, self.loader

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = self.store = self.loader = None
        self.tracker.forget()  # reloaded from what was committed
        self.eta.forget_alerts()

    def forget(self, device_ids: Iterable[str] | None = None) -> None:
        """Drop the cached per-device state of these devices (None: all): the outlier
        filter's track, tracking's device state, the ETA stage's motion and its alert
        state of their shipments; all are loaded from the database when next seen."""
        if device_ids is None:
            self.last.clear()
            self.tracker.forget()
            self.eta.forget()
            return
        devices = set(device_ids)
        for d in devices:
            self.last.pop(d, None)
        shipments = [s.id for d in devices for s in self.tracker.by_device.get(d, ())]
        self.tracker.forget(devices)
        self.eta.forget(devices, shipments)

    def process(self, batch: list[Inbound], fence: Fence | None = None) -> None:
        """Decode, store in one transaction, ack, publish. A batch that fails for its
        content (the database refuses it, or anything unexpected: not the database being
        down) is retried message by message, and a message that still fails is
        dead-lettered: bad input never blocks the stream (docs/RELIABILITY.md).
        ``fence(conn)`` runs in each transaction just before its commit (docstring of
        ``FenceLost``)."""
        try:
            try:
                self._process(batch, fence)
            except (FenceLost, _FenceFailed):
                raise
            except Exception as exc:
                if _transient(exc):
                    self.close()
                    raise
                log.warning("a batch of %d messages failed (%s: %s); retrying message by "
                            "message", len(batch), type(exc).__name__, _first_line(exc))
                for message in batch:
                    self._process_one(message, fence)
        except FenceLost:
            log.warning("the fence refused a batch of %d messages; its cached state is "
                        "dropped", len(batch))
            self.forget()
            raise
        except _FenceFailed as exc:
            self.close()
            raise exc.__cause__ or exc from None

    def _process_one(self, message: Inbound, fence: Fence | None) -> None:
        """One message; when it fails for its content, one dead letter for it
        (``storage_refused``, or ``internal_error`` naming the exception) and an ack."""
        try:
            self._process([message], fence)
            return
        except (FenceLost, _FenceFailed):
            raise
        except Exception as exc:
            if _transient(exc):
                self.close()
                raise
            if isinstance(exc, psycopg.Error):
                reason, detail = "storage_refused", _first_line(exc)
            else:
                log.error("unexpected error on a message on %s; dead-lettered",
                          message.topic[:200], exc_info=exc)
                reason, detail = "internal_error", f"{type(exc).__name__}: {_first_line(exc)}"
        refused = Decoded()
        refused.reject(reason, detail, message.topic, message.payload)
        try:
            store, _ = self.connect()
            with self._transaction(fence):
                store.write(Batch(rejections=refused.rejections))
        except (FenceLost, _FenceFailed):
            raise
        except Exception as exc:
            if _transient(exc):
                self.close()
                raise
            log.error("could not dead-letter a message on %s (%s); dropped",
                      message.topic[:200], _first_line(exc))
        self.source.ack([message])
        metrics.REJECTED.labels(reason).inc()

    @contextmanager
    def _transaction(self, fence: Fence | None) -> Iterator[Conn]:
        """The batch's transaction; ``fence(conn)`` just before its commit."""
        assert self.conn is not None
        with self.conn.transaction():
            yield self.conn
            if fence is not None:
                try:
                    fence(self.conn)
                except FenceLost:
                    raise
                except Exception as exc:  # also a database error: never the batch's fault
                    raise _FenceFailed() from exc

    def _reload(self, force: bool = False) -> None:
        """Take the fences and shipments that changed (``ingest.loader``)."""
        assert self.loader is not None
        found = self.loader.reload(force=force, stale=self.tracker.stale)
        if found.fences is not None:
            self.tracker.set_fences(found.fences)
        if found.shipments is not None:
            self.tracker.set_shipments(found.shipments)

    def _view(self, loader: Loader, device_ids: Iterable[str],
              scans: Iterable[Scan] = ()) -> TrackingView:
        """What tracking reads for the batch, loaded now (never while it runs)."""
        wanted = self.tracker.wanted(device_ids, scans)
        return self.tracker.view(wanted, loader.states(wanted.missing),
                                 loader.known_references(wanted.unknown))

    def _process(self, batch: list[Inbound], fence: Fence | None) -> None:
        store, loader = self.connect()
        self._reload()
        self.eta.reload_history()
        metrics.RECEIVED.inc(len(batch))
        now = datetime.now(UTC)
        decoded = decode_batch(
            batch, self.settings.mqtt_topic_prefix, self.settings.max_payload_bytes, now,
        )
        unknown = {f.device_id for f in decoded.fixes} - self.last.keys()
        if unknown:
            self.last.update(seed(loader.last_fixes(unknown)))
        live, moved = advance(decoded.fixes, self.last, self.outlier_rules)
        view = self._view(loader, (f.device_id for f in live), decoded.scans)
        outcome = self._track(view, live, decoded.scans, now)
        decoded.rejections.extend(outcome.rejections)
        eta = self._eta(view, live, outcome)
        results = Batch(decoded.fixes, live, decoded.rejections, outcome, eta)
        started = time.perf_counter()
        with self._transaction(fence):
            written = store.write(results)
        committed = time.time()
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        self._committed(results, written, moved)
        self.source.ack(batch)
        self._count(batch, decoded, written, committed)
        self._publish(LIVE_POSITIONS, live, _encoder.encode)
        self._publish_events(written.events)
        self._publish(LIVE_ETA, eta.messages, _encoder.encode)

    def _committed(self, results: Batch, written: Written,
                   moved: dict[str, DeviceTrack]) -> None:
        """The caches take what was committed."""
        assert self.store is not None
        self.store.committed(written)
        self.last.update(moved)
        self.tracker.commit(results.tracking, written.applied)
        self.eta.commit(results.eta)

    def _track(self, view: TrackingView, live: list[Fix], scans: list[Scan],
               now: datetime) -> Outcome:
        """The tracker's outcome; a bug in it costs only the events and cached state of
        the device (or scan) it failed on, never the positions, and never other devices'
        events."""
        try:
            return self.tracker.process(view, live, scans, now)
        except Exception:
            log.exception("tracking failed on a batch of %d fixes and %d scans; retrying "
                          "device by device", len(live), len(scans))
        merged = Outcome()
        for name, fixes, alone in _apart(live, scans):
            try:
                part = self.tracker.process(view, fixes, alone, now)
            except Exception:
                log.exception("tracking failed for %s; its events of this batch are lost",
                              name)
                self.tracker.forget({f.device_id for f in fixes})  # reloaded when next seen
                continue
            merged.items.extend(part.items)
            merged.exceptions.extend(part.exceptions)
            merged.states.update(part.states)
            merged.rejections.extend(part.rejections)
        return merged

    def _eta(self, view: TrackingView, live: list[Fix], outcome: Outcome) -> EtaOutcome:
        """The ETA stage's outcome for the batch (shipments delivered in it excluded); a
        bug in it costs the ETAs of the device it failed on, never the positions."""
        if not live:
            return EtaOutcome()
        delivered = {item.shipment_id for item in outcome.items
                     if isinstance(item, MilestoneOp) and item.kind in FINAL}
        try:
            return self.eta.process(live, view.by_device, delivered, view.area_anchor)
        except Exception:
            log.exception("the ETA stage failed on a batch of %d fixes; retrying device by "
                          "device", len(live))
        merged = EtaOutcome(dropped=set(delivered))
        for name, fixes, _ in _apart(live, []):
            try:
                part = self.eta.process(fixes, view.by_device, delivered, view.area_anchor)
            except Exception:
                log.exception("the ETA stage failed for %s; its ETAs are skipped", name)
                continue
            merged.rows.extend(part.rows)
            merged.events.extend(part.events)
            merged.messages.extend(part.messages)
            merged.motions.update(part.motions)
            merged.progress.update(part.progress)
            merged.dropped |= part.dropped
        merged.rows.sort(key=lambda r: r.shipment_id)
        return merged

    def _publish(self, topic: str, items: Sequence[T],
                 encode: Callable[[Sequence[T]], bytes]) -> None:
        """After the commit: ``items`` on a live topic, in messages the broker takes."""
        for payload in live_payloads(items, encode) if items else ():
            self.source.publish(self.settings.mqtt_topic_prefix + topic, payload)

    def _publish_events(self, events: list[Event]) -> None:
        self._publish(LIVE_EVENTS, events, encode_events)

    def sweep(self, fence: Fence | None = None,
              owns: Callable[[str], bool] | None = None) -> None:
        """The periodic part of tracking: notice geofence/shipment changes, and send
        ``device.offline`` for live devices silent for ``SHIPTRACK_OFFLINE_AFTER_S``
        (only those ``owns`` accepts: a partitioned worker sweeps its own devices).
        Raises only transient database errors (like ``process``) and ``FenceLost``."""
        try:
            store, loader = self.connect()
            self._reload()
            now = datetime.now(UTC)
            silent = [(d, ts) for d, ts in
                      loader.offline_candidates(now - self.tracker.config.offline_after)
                      if owns is None or owns(d)]
            if not silent:
                return
            view = self._view(loader, (d for d, _ in silent))
            outcome: Outcome = self.tracker.sweep(view, silent, now)
            with self._transaction(fence):
                written = store.write(Batch(tracking=outcome))
        except FenceLost:
            self.forget()
            raise
        except (psycopg.Error, _FenceFailed) as exc:
            self.close()
            if isinstance(exc, psycopg.Error) and is_transient(exc):
                raise
            log.error("tracking sweep failed: %s", exc.__cause__ or exc)
            return
        self.tracker.commit(outcome, written.applied)
        self._publish_events(written.events)

    def _count(self, batch: list[Inbound], decoded: Decoded, written: Written,
               committed: float) -> None:
        metrics.BATCH_SIZE.observe(len(batch))
        metrics.STORED.inc(written.inserted)
        metrics.DUPLICATES.inc(written.duplicates)
        metrics.OUTLIERS.inc(sum(1 for f in decoded.fixes if f.outlier))
        for r in decoded.rejections:
            metrics.REJECTED.labels(r.reason).inc(r.count)
            log.debug("rejected input on %s: %s (%s)", r.topic, r.detail, r.reason)
        metrics.LAG_SECONDS.observe(committed - batch[0].received)
        log.debug("batch of %d messages (%d fixes) committed %.0f ms after its oldest arrived",
                  len(batch), len(decoded.fixes), (committed - batch[0].received) * 1000)


def _apart(fixes: list[Fix], scans: list[Scan]) -> list[tuple[str, list[Fix], list[Scan]]]:
    """A batch split for isolation: each device's fixes (in order), then each scan."""
    per_device: dict[str, list[Fix]] = {}
    for f in fixes:
        per_device.setdefault(f.device_id, []).append(f)
    parts: list[tuple[str, list[Fix], list[Scan]]] = [
        (f"device {d}", group, []) for d, group in per_device.items()]
    return parts + [(f"a scan of {s.scanner_id}", [], [s]) for s in scans]


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, psycopg.Error) and is_transient(exc)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).splitlines()
    return (lines[0] if lines else type(exc).__name__)[:500]


def is_transient(exc: BaseException) -> bool:
    """Database errors worth retrying: connection lost, server shutting down, etc."""
    return isinstance(exc, psycopg.OperationalError | psycopg.errors.AdminShutdown)
