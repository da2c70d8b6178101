"""The data path of ingest, one batch at a time:

    broker messages -> decode (by topic) -> outliers / live position -> store (one
    transaction) -> ack to the broker -> republish the live fixes

Decoding is pure; ``Pipeline.process`` owns the order of the side effects, so that a
message is acknowledged only once what it carried is committed.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import msgspec
import psycopg

from ingest import metrics
from ingest.mqtt_source import Inbound, MqttSource
from ingest.outliers import LastFix, advance
from ingest.store import PositionStore
from shiptrack.config import Settings
from shiptrack.decode import Decoded, decode_position
from shiptrack.fix import Fix
from shiptrack.owntracks import decode_owntracks
from shiptrack.topics import LIVE_POSITIONS, route_topic

log = logging.getLogger("shiptrack.ingest")
_encoder = msgspec.json.Encoder()


def decode_batch(batch: list[Inbound], prefix: str, max_bytes: int, now: datetime) -> Decoded:
    """Every message of a batch, routed by its topic; bad input becomes rejections."""
    out = Decoded()
    for m in batch:
        route = route_topic(m.topic, prefix)
        if not route.valid:
            reason = "bad_device_id" if route.kind != "unknown" else "unknown_topic"
            out.reject(reason, f"topic {m.topic[:200]!r} names no valid device", m.topic,
                       m.payload)
            continue
        if route.kind == "position":
            part = decode_position(route.device_id, m.topic, m.payload, now, max_bytes)
        elif route.kind == "owntracks":
            part = decode_owntracks(route.device_id, m.topic, m.payload, now, max_bytes)
        else:
            out.reject("unsupported_topic", f"{route.kind} messages are not handled yet",
                       m.topic, m.payload)
            continue
        out.fixes.extend(part.fixes)
        out.rejections.extend(part.rejections)
    return out


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
        self.last: dict[str, LastFix] = {}
        self.max_speed_mps = settings.max_speed_kmh / 3.6

    def connect(self) -> PositionStore:
        if self.store is None:
            conn = psycopg.connect(self.database_url, connect_timeout=5)
            self.store = PositionStore(conn)
        return self.store

    def close(self) -> None:
        if self.store is not None:
            self.store.conn.close()
            self.store = None

    def process(self, batch: list[Inbound]) -> None:
        """Decode, store in one transaction, ack, publish. A batch the database refuses
        for its content (not for being down) is retried message by message, and a
        message it still refuses is dead-lettered: bad input never blocks the stream."""
        try:
            self._process(batch)
        except psycopg.Error as exc:
            if is_transient(exc):
                self.close()
                raise
            log.warning("database refused a batch (%s); retrying message by message", exc)
            for message in batch:
                self._process_one(message)

    def _process_one(self, message: Inbound) -> None:
        try:
            self._process([message])
        except psycopg.Error as exc:
            if is_transient(exc):
                self.close()
                raise
            refused = Decoded()
            refused.reject("storage_refused", str(exc).splitlines()[0][:500], message.topic,
                           message.payload)
            self.connect().write([], [], refused.rejections)
            self.source.ack([message])
            metrics.REJECTED.labels("storage_refused").inc()

    def _process(self, batch: list[Inbound]) -> None:
        store = self.connect()
        metrics.RECEIVED.inc(len(batch))
        decoded = decode_batch(
            batch, self.settings.mqtt_topic_prefix, self.settings.max_payload_bytes,
            datetime.now(UTC),
        )
        unknown = {f.device_id for f in decoded.fixes} - self.last.keys()
        if unknown:
            self.last.update(store.load_last(unknown))
        live, moved = advance(decoded.fixes, self.last, self.max_speed_mps)
        started = time.perf_counter()
        result = store.write(decoded.fixes, live, decoded.rejections)
        committed = time.time()
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        self.last.update(moved)
        self.source.ack(batch)
        self._count(batch, decoded, result.inserted, result.duplicates, committed)
        if live:
            self.source.publish(self.settings.mqtt_topic_prefix + LIVE_POSITIONS,
                                live_message(live))

    def _count(
        self, batch: list[Inbound], decoded: Decoded, inserted: int, duplicates: int,
        committed: float,
    ) -> None:
        metrics.BATCH_SIZE.observe(len(batch))
        metrics.STORED.inc(inserted)
        metrics.DUPLICATES.inc(duplicates)
        metrics.OUTLIERS.inc(sum(1 for f in decoded.fixes if f.outlier))
        for r in decoded.rejections:
            metrics.REJECTED.labels(r.reason).inc()
            log.debug("rejected input on %s: %s (%s)", r.topic, r.detail, r.reason)
        metrics.LAG_SECONDS.observe(committed - batch[0].received)


def is_transient(exc: BaseException) -> bool:
    """Database errors worth retrying: connection lost, server shutting down, etc."""
    return isinstance(exc, psycopg.OperationalError | psycopg.errors.AdminShutdown)
