"""The notification outbox worker: a task in each API process (like ``api/webhooks.py``).

1. Fan-out: reads ``events`` by ``seq`` past ``notification_cursor`` (one transaction
   holding the cursor row, so several API processes fan out each event once; the cursor
   moves over contiguous seqs only, as the webhook worker's does) and, for each
   occurrence (``shiptrack.notify.occurrences``) of a shipment, makes one
   ``notification_outbox`` row per active subscription that asked for it and was made
   before the event. ``UNIQUE (subscription_id, occurrence)`` makes a replayed or doubled
   fan-out change nothing. The row freezes what the message will say (``context``).
2. Delivery: claims due rows (``FOR UPDATE SKIP LOCKED``, leased by moving
   ``next_attempt_at``), holds rows that fall in the subscriber's quiet hours until they
   end (no attempt counted), renders and sends the others, and records the answer:
   sent; retried after ``base * 2**(attempts-1)`` (capped); or refused for good, which
   ends the subscription (``bounced``) with the reason. A provider that is down delays
   a row, never drops it; a recipient refusing for now is given up after
   ``SHIPTRACK_NOTIFY_GIVE_UP_HOURS``.

All of the outbox's times come from ``clock`` (injectable: tests move it through quiet
hours instead of waiting).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from prometheus_client import Counter
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from api.notify_channels import Result, SmtpSender, send_sms, send_webhook
from api.notify_links import links_for
from api.webhooks import backoff, contiguous
from shiptrack.config import Settings
from shiptrack.notify.mail import build_message
from shiptrack.notify.occurrences import WATCHED_TYPES, eta_news, occurrence
from shiptrack.notify.quiet import release_at
from shiptrack.notify.render import render_email, render_headline, render_sms

log = logging.getLogger("shiptrack.api.notify")

ATTEMPTS = Counter("shiptrack_notifications_total", "Notification send attempts, by outcome",
                   ["channel", "outcome"])
HELD = Counter("shiptrack_notifications_held_total", "Notifications held by quiet hours")
POLL_S = 2.0
BATCH = 500
CLAIM = 20
Clock = Callable[[], datetime]

EVENTS_SQL = """
SELECT seq, id, type, ts, shipment_id, data FROM events
WHERE seq > %s ORDER BY seq LIMIT %s
"""
SUBSCRIBERS_SQL = """
SELECT s.id, s.shipment_id, s.notify, s.start_seq, s.notified_eta,
       sh.reference, sh.status, sh.eta, sh.eta_low, sh.eta_high, sh.promised_by
FROM subscriptions s JOIN shipments sh ON sh.id = s.shipment_id
WHERE s.shipment_id = ANY(%s) AND s.state = 'active'
"""
INSERT_SQL = """
INSERT INTO notification_outbox (subscription_id, occurrence, kind, event_id, context,
                                 next_attempt_at)
VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""
CLAIM_SQL = """
UPDATE notification_outbox o
SET attempts = o.attempts + 1, last_attempt_at = %(now)s,
    next_attempt_at = %(now)s + %(lease)s
FROM subscriptions s JOIN shipments sh ON sh.id = s.shipment_id
WHERE s.id = o.subscription_id AND o.id IN (
    SELECT q.id FROM notification_outbox q JOIN subscriptions qs ON qs.id = q.subscription_id
    WHERE q.sent_at IS NULL AND q.failed_at IS NULL AND q.next_attempt_at <= %(now)s
      AND (qs.state = 'active' OR (qs.state = 'pending' AND q.kind = 'confirm'))
    ORDER BY q.next_attempt_at, q.id LIMIT %(n)s FOR UPDATE OF q SKIP LOCKED)
RETURNING o.id, o.subscription_id, o.occurrence, o.kind, o.context, o.attempts,
          %(now)s - o.created_at AS age, s.channel, s.address, s.language, s.timezone,
          s.quiet_start, s.quiet_end, s.secret, s.unsubscribe_token, s.shipment_id,
          sh.tracking_token
"""


@dataclass(slots=True)
class Claimed:
    id: int
    subscription_id: str
    occurrence: str
    kind: str
    context: dict[str, Any]
    attempts: int
    age: timedelta
    channel: str
    address: str
    language: str
    timezone: str
    quiet_start: Any
    quiet_end: Any
    secret: str | None
    unsubscribe_token: str
    shipment_id: str
    tracking_token: str


CLAIMED = [f.name for f in fields(Claimed)]


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return value if isinstance(value, str) else None


def context_of(event: dict[str, Any], sub: dict[str, Any], kind: str,
               code: str | None) -> dict[str, Any]:
    """What the message will tell, frozen at fan-out: the event, and the shipment's ETA
    window then (the event's own when it carries one)."""
    data = event["data"] or {}
    return {"kind": kind, "code": code, "ts": _iso(event["ts"]), "event_id": event["id"],
            "reference": sub["reference"], "status": sub["status"],
            "eta": data.get("eta") or _iso(sub["eta"]),
            "eta_low": data.get("eta_low") or _iso(sub["eta_low"]),
            "eta_high": data.get("eta_high") or _iso(sub["eta_high"]),
            "promised_by": data.get("promised_by") or _iso(sub["promised_by"])}


def _parse(value: Any) -> datetime | None:
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


class NotificationWorker:
    def __init__(self, pool: AsyncConnectionPool[Any], settings: Settings,
                 clock: Clock | None = None) -> None:
        self.pool = pool
        self.settings = settings
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.wake = asyncio.Event()
        self.gap_since: float | None = None
        self.http = httpx.AsyncClient(timeout=settings.notify_timeout_seconds,
                                      follow_redirects=False)
        self.smtp = SmtpSender(settings)
        self.eta_threshold = timedelta(minutes=settings.notify_eta_change_minutes)

    def poke(self) -> None:
        self.wake.set()

    async def run(self) -> None:
        try:
            while True:
                self.wake.clear()
                try:
                    busy = await self.fan_out() + await self.deliver_due()
                except (psycopg.Error, PoolTimeout, OSError) as exc:
                    log.warning("notification worker: %s; retrying", exc)
                    busy = 0
                    await asyncio.sleep(POLL_S)
                if not busy:
                    await self.smtp.close()  # idle: no connection held open
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), POLL_S)
        finally:
            await self.close()

    async def close(self) -> None:
        await self.smtp.close()
        await self.http.aclose()

    # fan-out ---------------------------------------------------------------------------

    async def fan_out(self) -> int:
        """Turn new events into outbox rows; returns how many events were taken."""
        now = self.clock()
        async with self.pool.connection() as conn, conn.transaction(), \
                conn.cursor(row_factory=dict_row) as cur:
            await cur.execute("INSERT INTO notification_cursor (id, last_seq)"
                              " SELECT true, coalesce(max(seq), 0) FROM events"
                              " ON CONFLICT DO NOTHING")
            await cur.execute("SELECT last_seq FROM notification_cursor FOR UPDATE")
            last = int((await cur.fetchone() or {"last_seq": 0})["last_seq"])
            await cur.execute(EVENTS_SQL, (last, BATCH))
            events = await cur.fetchall()
            take, self.gap_since = contiguous([int(e["seq"]) for e in events], last,
                                              self.gap_since, time.monotonic())
            events = events[:take]
            if not events:
                return 0
            watched = [e for e in events if e["type"] in WATCHED_TYPES and e["shipment_id"]]
            rows: list[tuple[Any, ...]] = []
            if watched:
                await cur.execute(SUBSCRIBERS_SQL, (sorted({e["shipment_id"] for e in watched}),))
                subs: dict[str, list[dict[str, Any]]] = {}
                for sub in await cur.fetchall():
                    subs.setdefault(sub["shipment_id"], []).append(sub)
                told: dict[str, datetime] = {}
                for event in watched:
                    for sub in subs.get(event["shipment_id"], ()):
                        if event["seq"] > sub["start_seq"]:
                            rows += self._rows_for(event, sub, told, now)
                for sub_id, eta in told.items():
                    await cur.execute("UPDATE subscriptions SET notified_eta = %s"
                                      " WHERE id = %s", (eta, sub_id))
            if rows:
                await cur.executemany(INSERT_SQL, rows)
            await cur.execute("UPDATE notification_cursor SET last_seq = %s",
                              (events[-1]["seq"],))
        if rows:
            log.debug("%d event(s) -> %d notification(s)", len(events), len(rows))
        return len(events)

    def _rows_for(self, event: dict[str, Any], sub: dict[str, Any],
                  told: dict[str, datetime], now: datetime) -> list[tuple[Any, ...]]:
        found = occurrence(event["type"], event["data"] or {})
        if found is None or found.kind not in sub["notify"]:
            return []
        if found.kind == "eta_changed":
            eta = _parse((event["data"] or {}).get("eta"))
            if eta is None:
                return []
            before = told.get(sub["id"], sub["notified_eta"])
            if before is not None and not eta_news(before, eta, self.eta_threshold):
                return []
            told[sub["id"]] = eta
            if before is None:
                return []  # the first ETA is the baseline, not news
        context = context_of(event, sub, found.kind, found.code)
        return [(sub["id"], event["id"], found.kind, event["id"], Jsonb(context), now)]

    # delivery --------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Send the due rows; returns how many were claimed."""
        now = self.clock()
        lease = timedelta(seconds=self.settings.notify_timeout_seconds * CLAIM + 5)
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(CLAIM_SQL, {"now": now, "lease": lease, "n": CLAIM})
            claimed = [Claimed(**{k: r[k] for k in CLAIMED}) for r in await cur.fetchall()]
        if not claimed:
            return 0
        claimed.sort(key=lambda c: c.id)
        pending = {c.id for c in claimed}
        try:
            for item in claimed:
                await self._one(item)
                pending.discard(item.id)
        finally:
            if pending:  # cancelled (shutdown): give the rest back at once
                with contextlib.suppress(Exception):
                    await asyncio.shield(self._release(sorted(pending)))
        return len(claimed)

    async def _release(self, ids: list[int]) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("UPDATE notification_outbox SET attempts = attempts - 1,"
                               " next_attempt_at = %s WHERE id = ANY(%s)", (self.clock(), ids))

    async def _one(self, item: Claimed) -> None:
        now = self.clock()
        if item.kind != "confirm":
            release = release_at(now, item.timezone, item.quiet_start, item.quiet_end)
            if release > now:
                await self._hold(item, release)
                return
        result = await self.send(item)
        await self.record(item, result)

    async def _hold(self, item: Claimed, until: datetime) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("UPDATE notification_outbox SET attempts = attempts - 1,"
                               " next_attempt_at = %s, held_until = %s WHERE id = %s",
                               (until, until, item.id))
        HELD.inc()
        log.info("notification %s held by quiet hours until %s", item.id, until)

    async def send(self, item: Claimed) -> Result:
        s = self.settings
        links = links_for(s, item.tracking_token, item.unsubscribe_token,
                          item.context.get("confirm_token"))
        try:
            if item.channel == "email":
                what = "confirm" if item.kind == "confirm" else "update"
                email = render_email(what, item.context, item.language, item.timezone, links,
                                     s.notify_templates_dir)
                message = build_message(
                    email, sender=s.mail_from, to=item.address, language=item.language,
                    key=f"{item.subscription_id}/{item.occurrence}",
                    unsubscribe_url=None if item.kind == "confirm" else links["unsubscribe_url"])
                return await self.smtp.send(message)
            if item.channel == "sms":
                text = render_sms(item.context, item.language, item.timezone, links,
                                  s.notify_templates_dir)
                return await send_sms(self.http, s, item.address, text)
            payload = {**item.context, "type": f"notification.{item.kind}",
                       "id": f"{item.subscription_id}.{item.occurrence}",
                       "subscription_id": item.subscription_id,
                       "shipment_id": item.shipment_id,
                       "text": render_headline(item.context, item.language,
                                               s.notify_templates_dir),
                       "tracking_url": links["tracking_url"]}
            return await send_webhook(self.http, item.address, item.secret or "",
                                      payload["id"], payload)
        except Exception as exc:  # a broken template must not stall the outbox
            log.exception("notification %s could not be made", item.id)
            return Result("retry", f"{type(exc).__name__}: {exc}"[:500])

    async def record(self, item: Claimed, result: Result) -> None:
        s, now = self.settings, self.clock()
        ATTEMPTS.labels(item.channel, result.outcome).inc()
        async with self.pool.connection() as conn, conn.transaction():
            if result.outcome == "sent":
                await conn.execute("UPDATE notification_outbox SET sent_at = %s,"
                                   " last_error = NULL WHERE id = %s", (now, item.id))
                return
            if result.recipient:
                await conn.execute(
                    "UPDATE subscriptions SET failures = failures + 1, last_error = %s,"
                    " last_error_at = %s WHERE id = %s",
                    (result.error, now, item.subscription_id))
            if result.outcome == "permanent":
                await conn.execute("UPDATE notification_outbox SET failed_at = %s,"
                                   " last_error = %s WHERE id = %s", (now, result.error, item.id))
                await conn.execute(
                    "UPDATE subscriptions SET state = 'bounced', ended_at = %s,"
                    " ended_reason = %s WHERE id = %s AND state IN ('active', 'pending')",
                    (now, result.error, item.subscription_id))
                log.info("notification %s refused for good (%s): subscription %s ended",
                         item.id, result.error, item.subscription_id)
                return
            give_up = result.recipient and item.age > timedelta(hours=s.notify_give_up_hours)
            delay = timedelta(seconds=backoff(item.attempts, s.notify_retry_base_seconds,
                                              s.notify_retry_max_seconds))
            await conn.execute(
                "UPDATE notification_outbox SET last_error = %s, next_attempt_at = %s,"
                " failed_at = CASE WHEN %s THEN %s::timestamptz END WHERE id = %s",
                (result.error, now + delay, give_up, now, item.id))
        log.info("notification %s failed (%s)%s", item.id, result.error,
                 "; giving up" if give_up else f"; retry in {delay}")
