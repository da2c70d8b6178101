"""``shiptrack ingest``: the long-running service around the pipeline.

It never crashes on the database or the broker going away: the current batch stays
unacknowledged and is retried with backoff until the database is back; paho reconnects
to the broker and resumes the persistent session.
"""

from __future__ import annotations

import logging
import threading
import time

from tenacity import (
    RetryCallState,
    Retrying,
    before_sleep_log,
    retry_if_exception,
    stop_when_event_set,
    wait_exponential_jitter,
)

from ingest import metrics
from ingest.mqtt_source import MqttSource
from ingest.pipeline import Pipeline, is_transient
from shiptrack.config import Settings
from shiptrack.db.migrate import migrate
from shiptrack.errors import BrokerError, ConfigError
from shiptrack.mqtturl import parse_mqtt_url
from shiptrack.topics import OWNTRACKS_FILTER, POSITION_FILTER, SCAN_FILTER

log = logging.getLogger("shiptrack.ingest")
BROKER_START_TIMEOUT_S = 10.0  # at start only; later outages are waited out


def subscriptions(settings: Settings) -> list[str]:
    prefix = settings.mqtt_topic_prefix
    filters = [prefix + POSITION_FILTER, prefix + OWNTRACKS_FILTER, prefix + SCAN_FILTER]
    if settings.mqtt_shared_group:
        filters = [f"$share/{settings.mqtt_shared_group}/{f}" for f in filters]
    return filters


_log_retry = before_sleep_log(log, logging.WARNING)


def before_retry(state: RetryCallState) -> None:
    """A batch's store failed and will be retried: count it (``STORE_ERRORS``), log it."""
    metrics.STORE_ERRORS.inc()
    _log_retry(state)


def run(settings: Settings, stop: threading.Event, ready: threading.Event | None = None) -> None:
    """Run until ``stop`` is set; then finish or abandon (unacked) the current batch.
    ``ready`` is set once the broker has accepted the subscriptions."""
    if not settings.database_url or not settings.mqtt_url:
        raise ConfigError("shiptrack ingest needs SHIPTRACK_DATABASE_URL and SHIPTRACK_MQTT_URL")
    applied = migrate(settings.database_url)  # StorageError (one line) when unreachable
    if applied:
        log.info("applied %d migration(s): %s", len(applied), ", ".join(applied))
    source = MqttSource(
        parse_mqtt_url(settings.mqtt_url), settings.mqtt_client_id, subscriptions(settings),
        settings.ingest_receive_maximum,
    )
    pipeline = Pipeline(settings, source, settings.database_url)
    server = None
    if settings.metrics_port:
        server = metrics.serve_metrics(settings.http_host, settings.metrics_port,
                                       lambda: not stop.is_set())
    source.start()
    if not source.subscribed.wait(BROKER_START_TIMEOUT_S) and not stop.is_set():
        source.stop()
        if server is not None:
            server.shutdown()
        raise BrokerError(f"cannot reach the MQTT broker at {source.target.url} (or it refused "
                          f"ingest's login) within {BROKER_START_TIMEOUT_S:g} s")
    log.info("ingest running: %s", ", ".join(source.filters))
    retrying = Retrying(
        retry=retry_if_exception(is_transient),
        wait=wait_exponential_jitter(multiplier=0.2, max=10),
        stop=stop_when_event_set(stop),
        before_sleep=before_retry,
        reraise=True,
    )
    next_sweep = 0.0
    try:
        while not stop.is_set():
            batch = source.next_batch(settings.ingest_batch_size, settings.ingest_batch_ms / 1000)
            if ready is not None and source.subscribed.is_set():
                ready.set()
            metrics.INBOX.set(source.pending())
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + settings.tracking_sweep_s
                try:
                    pipeline.sweep()
                except Exception as exc:  # the database is away: the batch path retries
                    log.warning("tracking sweep skipped: %s", exc)
            if not batch:
                continue
            try:
                retrying(pipeline.process, batch)
            except Exception as exc:
                if stop.is_set() and is_transient(exc):
                    break  # shutting down while the database is away: leave it unacked
                raise
    finally:
        source.stop()
        pipeline.close()
        if server is not None:
            server.shutdown()
        log.info("ingest stopped")
