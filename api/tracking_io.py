"""What the tracking routes share: recording a milestone the way ingest does (one guarded
statement, ``shiptrack.db.queries.tracking``; its event from
``shiptrack.shipments.milestone_event``), storing events (``INSERT_EVENTS``), and
publishing them on the live events topic after commit so that every stream and webhook
sees them."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from psycopg import AsyncCursor

from shiptrack.db.queries import tracking as q
from shiptrack.events import Event, encode_events
from shiptrack.shipments import CLEARED_WHEN_FINAL, FINAL, HUB, milestone_event
from shiptrack.topics import LIVE_EVENTS

log = logging.getLogger("shiptrack.api")
PUBLISH_WAIT_S = 2.0


async def store_events(cur: AsyncCursor[Any], events: list[Event]) -> list[Event]:
    """Insert in order; returns the ones newly stored (an id already there is skipped)."""
    if not events:
        return []
    async with cur.connection.cursor() as plain:
        await plain.execute(q.INSERT_EVENTS, q.event_params(events))
        stored = {str(r[0]) for r in await plain.fetchall()}
    return [e for e in events if e.id in stored]


async def record_milestone(cur: AsyncCursor[Any], ship: dict[str, Any], kind: str,
                           ts: datetime, source: str, data: dict[str, Any]) -> Event | None:
    """The milestone, if it moves the shipment forward (or is a hub scan of a shipment not
    yet delivered), and its event (not yet stored); None when it changed nothing."""
    async with cur.connection.cursor() as plain:
        await plain.execute(q.RECORD_MILESTONE, q.milestone_params(ship["id"], kind, ts, source,
                                                                   data))
        row = await plain.fetchone()
        if row is None:
            return None
        ts = row[1]
        if kind in FINAL:
            await plain.execute(q.CLOSE_EXCEPTIONS, (ship["id"], list(CLEARED_WHEN_FINAL)))
    status = ship["status"] if kind == HUB else kind
    ship["status"] = status
    return milestone_event(ship["id"], ship["reference"], ship["device_id"], kind, ts, source,
                           status, data)


async def bump_shipments(cur: AsyncCursor[Any]) -> None:
    """Tell ingest that shipments changed (it reloads them within a few seconds)."""
    await cur.execute(q.BUMP_VERSION, ("shipments",))


async def publish_events(app: FastAPI, events: list[Event]) -> None:
    """Best effort, after commit: the events are stored whatever happens here."""
    if not events:
        return
    publisher = getattr(app.state, "publisher", None)
    topic = app.state.settings.mqtt_topic_prefix + LIVE_EVENTS
    try:
        if publisher is None:
            raise RuntimeError("no publisher")
        await publisher.publish(topic, encode_events(events), wait_s=PUBLISH_WAIT_S)
    except Exception as exc:
        log.warning("%d event(s) stored but not published live: %s", len(events), exc)
