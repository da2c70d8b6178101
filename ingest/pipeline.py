"""The data path of ingest, one batch at a time:

    broker messages -> decode (by topic) -> outliers / live position -> tracking
    (geofences, milestones, exceptions) -> store (one transaction: positions, devices,
    dead letters, events, tracking state) -> ack to the broker -> republish the live
    fixes and the new events

Decoding is pure; ``Pipeline.process`` owns the order of the side effects, so that a
message is acknowledged only once what it carried is committed, and an event is
published only once it is stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg

from ingest import metrics
from ingest.eta_stage import EtaOutcome, EtaStage
from ingest.mqtt_source import Inbound, MqttSource
from ingest.outliers import DeviceTrack, Rules, advance, seed
from ingest.store import PositionStore
from ingest.tracking import MilestoneOp, Outcome, Tracker, TrackingConfig
from ingest.tracking_store import Caches, TrackingStore, Written
from shiptrack.config import Settings
from shiptrack.decode import Decoded, decode_position
from shiptrack.events import Event, encode_events
from shiptrack.fix import Fix
from shiptrack.owntracks import decode_owntracks
from shiptrack.scans import Scan, decode_scans
from shiptrack.shipments import FINAL
from shiptrack.topics import LIVE_ETA, LIVE_EVENTS, LIVE_POSITIONS, route_topic

log = logging.getLogger("shiptrack.ingest")
_encoder = msgspec.json.Encoder()


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


class FenceLost(Exception):
    """Raised by a batch's ``fence``: the process no longer owns what the batch belongs
    to (a partition taken over by another worker); nothing of the batch is committed."""


Fence = Callable[[psycopg.Connection[Any]], None]


def live_message(fixes: list[Fix]) -> bytes:
    """The republished payload: a JSON array of position objects (README, live topics)."""
    return _encoder.encode(fixes)


class Pipeline:
    """Owns the database connection of ingest; ``process`` raises only transient
    database errors (the caller reconnects and retries the same batch)."""

    def __init__(self, settings: Settings, source: MqttSource, database_url: str) -> None:
        self.settings = settings
        self.source = source
        self.database_url = database_url
        self.store: PositionStore | None = None
        self.last: dict[str, DeviceTrack] = {}  # the outlier filter's state, per device
        self.outlier_rules = Rules(settings.max_speed_kmh / 3.6, settings.outlier_confirm_fixes)
        self.tracker = Tracker(TrackingConfig.from_settings(settings))
        self.tracking: TrackingStore | None = None
        self._caches = Caches()
        self.eta = EtaStage.from_settings(settings, self.tracker.area_anchor)

    def connect(self) -> PositionStore:
        if self.store is None:
            conn = psycopg.connect(self.database_url, connect_timeout=5)
            self.store = PositionStore(conn)
            self.tracking = TrackingStore(
                conn, self.tracker, self._caches, self.settings.route_corridor_m,
                self.settings.sensor_excursion_s, self.settings.tracking_reload_s)
            self.tracking.refresh(force=True)
        return self.store

    def close(self) -> None:
        if self.store is not None:
            self.store.conn.close()
            self.store = None
            self.tracking = None
            self.tracker.reset_states()  # reloaded from what was committed
            self.eta.forget_alerts()

    def forget(self, device_ids: Iterable[str] | None = None) -> None:
        """Drop cached per-device state (``None``: all of it); reloaded from the database
        when the device is next seen (a partition taken over from another worker)."""
        if device_ids is None:
            self.last.clear()
            self.tracker.reset_states()
            self.eta.motions.clear()
            self.eta.progress.clear()
            self.eta.forget_alerts()
            self.tracker.stale = True  # shipments reloaded: another worker moved them on
            return
        for d in set(device_ids):
            self.last.pop(d, None)
            self.tracker.states.pop(d, None)
            self.eta.motions.pop(d, None)

    def process(self, batch: list[Inbound], fence: Fence | None = None) -> None:
        """Decode, store in one transaction, ack, publish. A batch that fails for its
        content (the database refuses it, or anything unexpected: not the database being
        down) is retried message by message, and a message that still fails is
        dead-lettered: bad input never blocks the stream (docs/RELIABILITY.md)."""
        try:
            self._process(batch, fence)
        except FenceLost:
            self._rollback()
            self.forget()
            raise
        except Exception as exc:
            if _transient(exc):
                self.close()
                raise
            log.warning("a batch of %d messages failed (%s: %s); retrying message by "
                        "message", len(batch), type(exc).__name__, _first_line(exc))
            for message in batch:
                self._process_one(message, fence)

    def _process_one(self, message: Inbound, fence: Fence | None = None) -> None:
        """One message; when it fails for its content, one dead letter for it
        (``storage_refused``, or ``internal_error`` naming the exception) and an ack."""
        try:
            self._process([message], fence)
            return
        except FenceLost:
            self._rollback()
            self.forget()
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
        self._rollback()
        try:
            store = self.connect()
            store.write([], [], refused.rejections,
                        within=None if fence is None else lambda: fence(store.conn))
        except FenceLost:
            self._rollback()
            self.forget()
            raise
        except Exception as exc:
            if _transient(exc):
                self.close()
                raise
            log.error("could not dead-letter a message on %s (%s); dropped",
                      message.topic[:200], _first_line(exc))
        self.source.ack([message])
        metrics.REJECTED.labels(reason).inc()

    def _rollback(self) -> None:
        """Leave no failed transaction behind on the connection (an error inside one)."""
        if self.store is not None and not self.store.conn.closed:
            try:
                self.store.conn.rollback()
            except psycopg.Error:
                self.close()

    def _process(self, batch: list[Inbound], fence: Fence | None = None) -> None:
        store = self.connect()
        tracking = self._tracking()
        tracking.refresh()
        metrics.RECEIVED.inc(len(batch))
        now = datetime.now(UTC)
        decoded = decode_batch(
            batch, self.settings.mqtt_topic_prefix, self.settings.max_payload_bytes, now,
        )
        unknown = {f.device_id for f in decoded.fixes} - self.last.keys()
        if unknown:
            self.last.update(seed(store.load_last(unknown)))
        live, moved = advance(decoded.fixes, self.last, self.outlier_rules)
        outcome = self._track(tracking, live, decoded.scans, now)
        decoded.rejections.extend(outcome.rejections)
        eta = self._eta(live, outcome)
        written: list[Written] = []
        eta_events: list[Event] = []

        def within() -> None:
            written.append(tracking.write(outcome))
            eta_events.extend(tracking.write_eta(eta))
            if fence is not None:
                fence(store.conn)  # last: the ownership check just before the commit

        started = time.perf_counter()
        result = store.write(decoded.fixes, live, decoded.rejections, within=within)
        committed = time.time()
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        self.last.update(moved)
        self.tracker.commit(outcome, written[0].applied)
        self.eta.commit(eta)
        self.source.ack(batch)
        self._count(batch, decoded, result.inserted, result.duplicates, committed)
        if live:
            self.source.publish(self.settings.mqtt_topic_prefix + LIVE_POSITIONS,
                                live_message(live))
        self._publish_events(written[0].events + eta_events)
        if eta.messages:
            self.source.publish(self.settings.mqtt_topic_prefix + LIVE_ETA,
                                _encoder.encode(eta.messages))

    def _track(self, tracking: TrackingStore, live: list[Fix], scans: list[Scan],
               now: datetime) -> Outcome:
        """The tracker's outcome; a bug in it costs only the events and cached state of
        the device (or scan) it failed on, never the positions, and never other devices'
        events (database errors propagate like the store's own)."""
        try:
            return self.tracker.process(tracking, live, scans, now)
        except psycopg.Error:
            raise
        except Exception:
            log.exception("tracking failed on a batch of %d fixes and %d scans; retrying "
                          "device by device", len(live), len(scans))
        merged = Outcome()
        for name, fixes, alone in _apart(live, scans):
            try:
                part = self.tracker.process(tracking, fixes, alone, now)
            except psycopg.Error:
                raise
            except Exception:
                log.exception("tracking failed for %s; its events of this batch are lost",
                              name)
                for f in fixes:
                    self.tracker.states.pop(f.device_id, None)  # reloaded when next seen
                continue
            merged.items.extend(part.items)
            merged.exceptions.extend(part.exceptions)
            merged.states.update(part.states)
            merged.rejections.extend(part.rejections)
        return merged

    def _eta(self, live: list[Fix], outcome: Outcome) -> EtaOutcome:
        """The ETA stage's outcome for the batch (shipments delivered in it excluded); a
        bug in it costs the ETAs of the device it failed on, never the positions."""
        if not live:
            return EtaOutcome()
        delivered = {item.shipment_id for item in outcome.items
                     if isinstance(item, MilestoneOp) and item.kind in FINAL}
        try:
            return self.eta.process(live, self.tracker.by_device, delivered)
        except psycopg.Error:
            raise
        except Exception:
            log.exception("the ETA stage failed on a batch of %d fixes; retrying device by "
                          "device", len(live))
        merged = EtaOutcome(dropped=set(delivered))
        for name, fixes, _ in _apart(live, []):
            try:
                part = self.eta.process(fixes, self.tracker.by_device, delivered)
            except psycopg.Error:
                raise
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

    def _tracking(self) -> TrackingStore:
        self.connect()
        assert self.tracking is not None
        return self.tracking

    def _publish_events(self, events: list[Event]) -> None:
        if events:
            self.source.publish(self.settings.mqtt_topic_prefix + LIVE_EVENTS,
                                encode_events(events))

    def sweep(self) -> None:
        """The periodic part of tracking: notice geofence/shipment changes, and send
        ``device.offline`` for live devices silent for ``SHIPTRACK_OFFLINE_AFTER_S``.
        Raises only transient database errors (like ``process``)."""
        try:
            store, tracking = self.connect(), self._tracking()
            tracking.refresh()
            now = datetime.now(UTC)
            silent = tracking.offline_candidates(now - self.tracker.config.offline_after)
            if not silent:
                return
            outcome: Outcome = self.tracker.sweep(tracking, silent, now)
            with store.conn.transaction():
                written = tracking.write(outcome)
        except psycopg.Error as exc:
            self.close()
            if is_transient(exc):
                raise
            log.error("tracking sweep failed: %s", exc)
            return
        self.tracker.commit(outcome, written.applied)
        self._publish_events(written.events)

    def _count(
        self, batch: list[Inbound], decoded: Decoded, inserted: int, duplicates: int,
        committed: float,
    ) -> None:
        metrics.BATCH_SIZE.observe(len(batch))
        metrics.STORED.inc(inserted)
        metrics.DUPLICATES.inc(duplicates)
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
