"""The notification outbox worker: a task in each API process (like ``api/webhooks.py``).

1. Fan-out (``api/notify_fanout.py``): reads ``events`` by ``seq`` past
   ``notification_cursor`` (one transaction holding the cursor row, so several API
   processes fan out each event once; the cursor moves over contiguous seqs only, as
   the webhook worker's does) and, for each
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
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from prometheus_client import Counter
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from api.notify_channels import Result, SmtpSender, send_sms, send_webhook
from api.notify_fanout import Clock, FanOut
from api.notify_links import links_for
from api.subscriptions_io import drop_pending
from api.webhook_targets import refusal
from api.webhooks import backoff
from shiptrack.config import Settings
from shiptrack.db.queries import notifications as notification_sql
from shiptrack.db.queries import subscriptions as subscription_sql
from shiptrack.notify.mail import build_message
from shiptrack.notify.quiet import release_at
from shiptrack.notify.render import render_email, render_headline, render_sms
from shiptrack.tracking_tokens import key_from, known_token

log = logging.getLogger("shiptrack.api.notify")

ATTEMPTS = Counter("shiptrack_notifications_total", "Notification send attempts, by outcome",
                   ["channel", "outcome"])
HELD = Counter("shiptrack_notifications_held_total", "Notifications held by quiet hours")
POLL_S = 2.0
EXPIRE_EVERY_S = 3600.0
BATCH = 500
CLAIM = 20


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
    tracking_token_hash: bytes | None  # the token is made again from the id (tracking_tokens)


CLAIMED = [f.name for f in fields(Claimed)]


class NotificationWorker:
    def __init__(self, pool: AsyncConnectionPool[Any], settings: Settings,
                 clock: Clock | None = None, tracking_key: bytes | None = None) -> None:
        self.pool = pool
        self.settings = settings
        # the API's key (app.state.tracking_key); alone: the same fallback as create_app
        self.tracking_key = tracking_key or key_from(
            settings.tracking_key or settings.admin_token or "")
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.wake = asyncio.Event()
        self.fanout = FanOut(pool, self.clock,
                             timedelta(minutes=settings.notify_eta_change_minutes))
        self.http = httpx.AsyncClient(timeout=settings.notify_timeout_seconds,
                                      follow_redirects=False)
        self.smtp = SmtpSender(settings)
        self.bounced: set[str] = set()  # subscriptions ended in the current round
        self.next_expiry = 0.0

    def poke(self) -> None:
        self.wake.set()

    async def run(self) -> None:
        try:
            while True:
                self.wake.clear()
                try:
                    if time.monotonic() >= self.next_expiry:
                        await self.expire_pending()
                        self.next_expiry = time.monotonic() + EXPIRE_EVERY_S
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

    async def expire_pending(self) -> int:
        """Customer sign-ups not confirmed within ``SHIPTRACK_NOTIFY_CONFIRM_DAYS`` end."""
        cutoff = self.clock() - timedelta(days=self.settings.notify_confirm_days)
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(subscription_sql.END_UNCONFIRMED, (self.clock(), cutoff))
            ended = [str(r[0]) for r in await cur.fetchall()]
            for sub_id in ended:
                await drop_pending(conn, sub_id, "not confirmed")
        return len(ended)

    async def fan_out(self) -> int:
        """New events to outbox rows (``api.notify_fanout``); how many were taken."""
        return await self.fanout()

    # delivery --------------------------------------------------------------------------

    async def deliver_due(self) -> int:
        """Send the due rows; returns how many were claimed."""
        now = self.clock()
        lease = timedelta(seconds=self.settings.notify_timeout_seconds * CLAIM + 5)
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(notification_sql.CLAIM, {"now": now, "lease": lease, "n": CLAIM})
            claimed = [Claimed(**{k: r[k] for k in CLAIMED}) for r in await cur.fetchall()]
        if not claimed:
            return 0
        claimed.sort(key=lambda c: c.id)
        self.bounced.clear()
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
            await conn.execute(notification_sql.RELEASE, (self.clock(), ids))

    async def _one(self, item: Claimed) -> None:
        if item.subscription_id in self.bounced:
            return  # ended earlier in this round: drop_pending has dropped this row
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
            await conn.execute(notification_sql.HOLD, (until, until, item.id))
        HELD.inc()
        log.info("notification %s held by quiet hours until %s", item.id, until)

    async def send(self, item: Claimed) -> Result:
        s = self.settings
        token = known_token(self.tracking_key, item.shipment_id, item.tracking_token_hash)
        links = links_for(s, token, item.unsubscribe_token, item.context.get("confirm_token"))
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
            if not s.webhook_allow_private and (reason := await refusal(item.address)):
                return Result("retry", f"refused: {reason}"[:500])
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
                await conn.execute(notification_sql.SENT, (now, item.id))
                return
            if result.recipient:
                await conn.execute(subscription_sql.RECORD_FAILURE,
                                   (result.error, now, item.subscription_id))
            if result.outcome == "permanent":
                await conn.execute(notification_sql.FAILED, (now, result.error, item.id))
                await conn.execute(subscription_sql.BOUNCE,
                                   (now, result.error, item.subscription_id))
                await drop_pending(conn, item.subscription_id, "subscription bounced")
                self.bounced.add(item.subscription_id)
                log.info("notification %s refused for good (%s): subscription %s ended",
                         item.id, result.error, item.subscription_id)
                return
            give_up = result.recipient and item.age > timedelta(hours=s.notify_give_up_hours)
            delay = timedelta(seconds=backoff(item.attempts, s.notify_retry_base_seconds,
                                              s.notify_retry_max_seconds))
            await conn.execute(notification_sql.RETRY,
                               (result.error, now + delay, give_up, now, item.id))
        log.info("notification %s failed (%s)%s", item.id, result.error,
                 "; giving up" if give_up else f"; retry in {delay}")
