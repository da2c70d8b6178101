"""Webhook delivery (Standard Webhooks, standardwebhooks.com).

A worker task in each API process:

1. fans out: reads new rows of ``events`` by ``seq`` past ``webhook_cursor`` and makes a
   ``webhook_deliveries`` row per matching webhook, in one transaction holding the cursor
   row (so several API processes fan out each event once). The cursor only moves over a
   contiguous run of ``seq``; a gap (a transaction that took a seq and has not committed)
   holds it for up to ``GAP_WAIT_S`` before it is taken as a rollback.
2. delivers: claims due rows (``FOR UPDATE SKIP LOCKED``, at most ``PER_HOOK`` of one
   webhook, leased by moving ``next_attempt_at`` past their timeouts), POSTs the frozen
   body with ``webhook-id`` (the event id), ``webhook-timestamp`` and
   ``webhook-signature`` (``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body`` keyed
   with the base64-decoded secret), and records the answer.
   Not a 2xx: retried after ``base * 2**(attempts-1)`` seconds (capped at ``max``), until
   it succeeds or is older than ``give_up`` hours.

It wakes every ``POLL_S`` seconds, and at once when the live feed sees an event.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from api.webhook_targets import refusal
from shiptrack import __version__
from shiptrack.config import Settings
from shiptrack.db.queries import webhooks as webhook_sql

log = logging.getLogger("shiptrack.api.webhooks")

SECRET_PREFIX = "whsec_"
POLL_S = 2.0
GAP_WAIT_S = 10.0
BATCH = 500
CLAIM = 50  # deliveries claimed per round
PER_HOOK = 5  # of which at most this many of one webhook (sent one after the other)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value of one delivery attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secret: str, msg_id: str, body: str, now: float | None = None) -> dict[str, str]:
    ts = int(time.time() if now is None else now)
    return {"content-type": "application/json", "user-agent": f"shiptrack/{__version__}",
            "webhook-id": msg_id, "webhook-timestamp": str(ts),
            "webhook-signature": sign(secret, msg_id, ts, body)}


def backoff(attempts: int, base: float, cap: float) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones."""
    return float(min(cap, base * 2 ** max(0, min(attempts - 1, 30))))


def wants(event_types: Sequence[str], event_type: str) -> bool:
    return not event_types or event_type in event_types


def contiguous(seqs: list[int], last: int, gap_since: float | None, now: float,
               wait: float = GAP_WAIT_S) -> tuple[int, float | None]:
    """How many of ``seqs`` (ascending, all > ``last``) may be taken now, and since when
    the first gap has been waited on (None: no gap holds the cursor)."""
    expected = last + 1
    for i, seq in enumerate(seqs):
        if seq != expected:
            if gap_since is None:
                return i, now
            if now - gap_since < wait:
                return i, gap_since
        expected = seq + 1
    return len(seqs), None


@dataclass(slots=True)
class Claimed:
    id: int
    webhook_id: str
    event_id: str
    body: str
    attempts: int
    age: timedelta
    url: str
    secret: str


CLAIMED = [f.name for f in fields(Claimed)]


class WebhookWorker:
    def __init__(self, pool: AsyncConnectionPool[Any], settings: Settings,
                 client: httpx.AsyncClient | None = None) -> None:
        self.pool = pool
        self.settings = settings
        self.wake = asyncio.Event()
        self.gap_since: float | None = None
        self.client = client or httpx.AsyncClient(
            timeout=settings.webhook_timeout_seconds, follow_redirects=False)

    def poke(self) -> None:
        """New events may be there (called by the live feed)."""
        self.wake.set()

    async def run(self) -> None:
        try:
            while True:
                self.wake.clear()  # a poke from now on is seen by the wait below
                try:
                    busy = await self.fan_out() + await self.deliver_due()
                except (psycopg.Error, PoolTimeout, OSError) as exc:
                    log.warning("webhook worker: %s; retrying", exc)
                    busy = 0
                    await asyncio.sleep(POLL_S)
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wake.wait(), POLL_S)
        finally:
            await self.client.aclose()

    async def fan_out(self) -> int:
        """Turn new events into deliveries; returns how many events were taken."""
        async with self.pool.connection() as conn, conn.transaction():
            if (await (await conn.execute(webhook_sql.EVENTS_TABLE)).fetchone() or
                    [None])[0] is None:
                return 0  # the events table is not there yet
            await conn.execute(webhook_sql.INIT_CURSOR)
            row = await (await conn.execute(webhook_sql.LOCK_CURSOR)).fetchone()
            assert row is not None
            last = int(row[0])
            events = await (await conn.execute(webhook_sql.EVENTS_AFTER, (last, BATCH))).fetchall()
            take, self.gap_since = contiguous([int(e[0]) for e in events], last,
                                              self.gap_since, time.monotonic())
            events = events[:take]
            if not events:
                return 0
            hooks = await (await conn.execute(webhook_sql.LIVE_HOOKS)).fetchall()
            rows = [(h[0], e[1], e[0], e[3]) for e in events for h in hooks
                    if e[0] > h[2] and wants(h[1], e[2])]
            if rows:
                async with conn.cursor() as cur:
                    await cur.executemany(webhook_sql.INSERT_DELIVERY, rows)
            await conn.execute(webhook_sql.MOVE_CURSOR, (events[-1][0],))
        if rows:
            log.debug("%d event(s) -> %d delivery(ies)", len(events), len(rows))
        return len(events)

    async def deliver_due(self) -> int:
        """Send the due deliveries (one webhook's in order); returns how many were tried."""
        # the lease outlasts one webhook's claimed deliveries sent one after the other, so
        # no other API process claims them meanwhile
        lease = timedelta(seconds=self.settings.webhook_timeout_seconds * PER_HOOK + 5)
        async with self.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(webhook_sql.CLAIM, {"lease": lease, "n": CLAIM, "per_hook": PER_HOOK})
            claimed = [Claimed(**{k: r[k] for k in CLAIMED}) for r in await cur.fetchall()]
        if not claimed:
            return 0
        by_hook: dict[str, list[Claimed]] = defaultdict(list)
        for c in sorted(claimed, key=lambda c: c.id):
            by_hook[c.webhook_id].append(c)
        await asyncio.gather(*(self._send_all(group) for group in by_hook.values()))
        return len(claimed)

    async def _send_all(self, group: list[Claimed]) -> None:
        for delivery in group:
            status, error = await self.attempt(delivery)
            await self.record(delivery, status, error)

    async def attempt(self, d: Claimed) -> tuple[int | None, str | None]:
        if not self.settings.webhook_allow_private:
            reason = await refusal(d.url)
            if reason:
                return None, f"refused: {reason}"[:500]
        try:
            answer = await self.client.post(
                d.url, content=d.body.encode(), headers=headers(d.secret, d.event_id, d.body))
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= answer.status_code < 300:
            return answer.status_code, None
        return answer.status_code, f"HTTP {answer.status_code}"

    async def record(self, d: Claimed, status: int | None, error: str | None) -> None:
        s = self.settings
        async with self.pool.connection() as conn:
            if error is None:
                await conn.execute(webhook_sql.DONE, (status, d.id))
                return
            give_up = d.age > timedelta(hours=s.webhook_give_up_hours)
            delay = timedelta(seconds=backoff(d.attempts, s.webhook_retry_base_seconds,
                                              s.webhook_retry_max_seconds))
            await conn.execute(webhook_sql.RETRY, (status, error, delay, give_up, d.id))
        log.info("webhook %s: delivery of event %s failed (%s)%s", d.webhook_id, d.event_id,
                 error, "; giving up" if give_up else f"; retry in {delay}")
