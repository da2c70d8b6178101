"""The carrier poller: a task in each API process (with ``SHIPTRACK_CARRIER_ACCOUNTS``
set) that asks carriers' APIs, through karrio (``shiptrack.carriers.polling``), about
shipments with a carrier and a tracking number, and applies what they say like a push
(``api.carrier_apply``).

- Due shipments (not final, ``carrier_poll_at`` null or past, of a configured carrier) are
  claimed with ``FOR UPDATE SKIP LOCKED`` and leased for ``LEASE_S`` by moving
  ``carrier_poll_at``, so several API processes never poll one shipment together.
- Each carrier has a token bucket (its ``requests_per_minute``); a shipment without a token
  waits for one (its poll moves by that long).
- After a poll: the next one in ``interval_s`` of the shipment's (new) stage. After a
  failure: the shipment waits ``backoff_s`` of its failures in a row, and the carrier's
  bucket pauses likewise (a carrier down or limiting us is not hammered).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from api.carrier_apply import apply_update
from api.tracking_io import publish_events, store_events
from shiptrack.carriers.polling import (
    Account,
    Gateways,
    RateLimiter,
    backoff_s,
    fetch,
    interval_s,
)
from shiptrack.config import Settings
from shiptrack.db.queries.tracking import FINAL_SQL

log = logging.getLogger("shiptrack.api")
LEASE_S = 300.0
ROUND_S = 10.0
BATCH = 20

CLAIM = """
UPDATE shipments s SET carrier_poll_at = %(lease)s
  FROM (SELECT id FROM shipments
         WHERE carrier = ANY(%(carriers)s) AND carrier_tracking_number IS NOT NULL
           AND status NOT IN (""" + FINAL_SQL + """)
           AND (carrier_poll_at IS NULL OR carrier_poll_at <= %(now)s)
         ORDER BY carrier_poll_at NULLS FIRST, id
         LIMIT %(limit)s FOR UPDATE SKIP LOCKED) due
 WHERE s.id = due.id
RETURNING s.id, s.carrier, s.carrier_tracking_number, s.status, s.carrier_poll_failures
"""


class CarrierPoller:
    def __init__(self, pool: AsyncConnectionPool[Any], settings: Settings,
                 accounts: dict[str, Account], app: FastAPI | None = None) -> None:
        self.pool = pool
        self.base_s = settings.carrier_poll_s
        self.accounts = accounts
        self.app = app
        self.gateways = Gateways()
        self.limiters = {c: RateLimiter(a.per_minute) for c, a in accounts.items()}

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("carrier poll round failed")
            await asyncio.sleep(ROUND_S)

    async def poll_once(self, now: datetime | None = None) -> int:
        """One round: claim due shipments and poll them; returns how many were asked."""
        now = now or datetime.now(UTC)
        async with self.pool.connection() as conn, conn.transaction(), \
                conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(CLAIM, {"carriers": list(self.accounts), "now": now,
                                      "lease": now + timedelta(seconds=LEASE_S),
                                      "limit": BATCH})
            due = await cur.fetchall()
        asked = 0
        for row in due:
            wait = self.limiters[row["carrier"]].take()
            if wait > 0:
                await self._reschedule(row["id"], now + timedelta(seconds=wait),
                                       row["carrier_poll_failures"])
                continue
            asked += 1
            await self._poll(row, now)
        return asked

    async def _poll(self, row: dict[str, Any], now: datetime) -> None:
        account = self.accounts[row["carrier"]]
        limiter = self.limiters[row["carrier"]]
        try:
            update = await asyncio.to_thread(fetch, self.gateways, account,
                                             row["carrier_tracking_number"], now)
        except Exception as exc:
            failures = row["carrier_poll_failures"] + 1
            limiter.failed()
            log.warning("polling %s %s failed (%d in a row; next in %.0f s): %s",
                        row["carrier"], row["id"], failures, backoff_s(failures), exc)
            await self._reschedule(row["id"], now + timedelta(seconds=backoff_s(failures)),
                                   failures)
            return
        limiter.succeeded()
        async with self.pool.connection() as conn, conn.transaction(), \
                conn.cursor(row_factory=dict_row) as cur:
            applied = await apply_update(cur, update)
            stored = await store_events(cur, applied.events)
            await cur.execute("SELECT status FROM shipments WHERE id = %s", (row["id"],))
            found = await cur.fetchone()
            status = found["status"] if found else row["status"]
            await cur.execute("UPDATE shipments SET carrier_poll_at = %s,"
                              " carrier_poll_failures = 0 WHERE id = %s",
                              (now + timedelta(seconds=interval_s(status, self.base_s)),
                               row["id"]))
        if self.app is not None:
            await publish_events(self.app, stored)

    async def _reschedule(self, shipment_id: str, at: datetime, failures: int) -> None:
        async with self.pool.connection() as conn:
            await conn.execute("UPDATE shipments SET carrier_poll_at = %s,"
                               " carrier_poll_failures = %s WHERE id = %s",
                               (at, failures, shipment_id))
