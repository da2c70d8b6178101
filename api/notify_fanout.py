"""Fan-out of the notification outbox: new ``events`` (by ``seq`` past
``notification_cursor``) to one ``notification_outbox`` row per (subscription,
occurrence). One transaction holds the cursor row, so several API processes fan out each
event once; the cursor moves over contiguous seqs only (``api.webhooks.contiguous``);
``ON CONFLICT DO NOTHING`` on the outbox key makes a replay change nothing. Each row
freezes what its message will tell (``context_of``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from api.webhooks import contiguous
from shiptrack.db.queries import notifications as notification_sql
from shiptrack.db.queries import subscriptions as subscription_sql
from shiptrack.notify.occurrences import WATCHED_TYPES, eta_news, occurrence

log = logging.getLogger("shiptrack.api.notify")

BATCH = 500
Clock = Callable[[], datetime]


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


class FanOut:
    def __init__(self, pool: AsyncConnectionPool[Any], clock: Clock,
                 eta_threshold: timedelta) -> None:
        self.pool = pool
        self.clock = clock
        self.eta_threshold = eta_threshold
        self.gap_since: float | None = None

    async def __call__(self) -> int:
        """Turn new events into outbox rows; returns how many events were taken."""
        now = self.clock()
        async with self.pool.connection() as conn, conn.transaction(), \
                conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(notification_sql.INIT_CURSOR)
            await cur.execute(notification_sql.LOCK_CURSOR)
            last = int((await cur.fetchone() or {"last_seq": 0})["last_seq"])
            await cur.execute(notification_sql.EVENTS_AFTER, (last, BATCH))
            events = await cur.fetchall()
            take, self.gap_since = contiguous([int(e["seq"]) for e in events], last,
                                              self.gap_since, time.monotonic())
            events = events[:take]
            if not events:
                return 0
            watched = [e for e in events if e["type"] in WATCHED_TYPES and e["shipment_id"]]
            rows: list[tuple[Any, ...]] = []
            if watched:
                await cur.execute(notification_sql.SUBSCRIBERS,
                                  (sorted({e["shipment_id"] for e in watched}),))
                subs: dict[str, list[dict[str, Any]]] = {}
                for sub in await cur.fetchall():
                    subs.setdefault(sub["shipment_id"], []).append(sub)
                told: dict[str, datetime] = {}
                for event in watched:
                    for sub in subs.get(event["shipment_id"], ()):
                        if event["seq"] > sub["start_seq"]:
                            rows += self._rows_for(event, sub, told, now)
                for sub_id, eta in told.items():
                    await cur.execute(subscription_sql.SET_NOTIFIED_ETA, (eta, sub_id))
            if rows:
                await cur.executemany(notification_sql.INSERT, rows)
            await cur.execute(notification_sql.MOVE_CURSOR, (events[-1]["seq"],))
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
