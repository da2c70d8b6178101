"""The exceptions queue (SPEC): ``GET /api/v1/exceptions?state=open|acknowledged|resolved``
and ``POST /api/v1/exceptions/{id}/acknowledge``.

An exception is an event ``shiptrack.exceptions.KINDS`` selects (every shipment's
``shipment.exception``, its at-risk flag, a device's own detections when it carries no
shipment); its state comes from that table (the first later event resolving it) and
from ``exception_acks``. One queue for every dispatcher: an acknowledgement is stored
(who, when, note), recorded as an ``exception.acknowledged`` event and published live,
so every open dashboard sees it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from psycopg import AsyncCursor
from psycopg.rows import dict_row

from api.auth import Principal, Reader, Writer
from api.errors import ApiError, error_responses
from api.exception_schemas import (
    AcknowledgeBody,
    Acknowledgement,
    Detection,
    ExceptionItem,
    ExceptionList,
    Resolution,
)
from api.pagination import decode_cursor, encode_cursor
from api.tracking_io import publish_events, store_events
from shiptrack import exceptions as exc
from shiptrack.db.queries import events as event_sql
from shiptrack.db.queries import tokens as token_sql
from shiptrack.events import make_event

router = APIRouter(prefix="/api/v1", tags=["exceptions"])
EventId = Annotated[str, Path(pattern=r"^evt_[0-9A-Z]{26}$",
                              examples=["evt_01JDX4M2QZ8T5R3W9K6N1B7C0A"])]


def parse_states(value: str | None) -> list[str]:
    states = [s.strip() for s in (value or "").split(",") if s.strip()]
    bad = [s for s in states if s not in exc.STATES]
    if bad:
        raise ApiError(422, f"state: {bad[0]!r} is not one of {', '.join(exc.STATES)}")
    return states


def item_from_row(row: dict[str, Any]) -> ExceptionItem:
    resolved = row["resolved_id"] is not None
    acked = row["acknowledged_at"] is not None
    return ExceptionItem(
        id=row["id"], type=row["type"], code=exc.exception_code(row),
        state=exc.state_of(resolved, acked), ts=row["ts"], device_id=row["device_id"],
        shipment_id=row["shipment_id"], reference=row["reference"], data=row["data"],
        resolved=Resolution(id=row["resolved_id"], type=row["resolved_type"],
                            ts=row["resolved_ts"]) if resolved else None,
        acknowledged=Acknowledgement(at=row["acknowledged_at"], by=row["acknowledged_by"],
                                     note=row["note"]) if acked else None,
        detection=Detection(type=row["detection_type"], data=row["detection_data"])
        if row["detection_type"] else None,
    )


@router.get("/exceptions", response_model=ExceptionList, summary="The exceptions queue",
            responses=error_responses(400, 422))
async def list_exceptions(
    request: Request, _: Reader,
    state: Annotated[str | None, Query(
        max_length=40, description="open, acknowledged or resolved (comma-separated for "
        "several); default: all", examples=["open"])] = None,
    device_id: Annotated[str | None, Query(max_length=64)] = None,
    shipment_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> ExceptionList:
    states = parse_states(state)
    seq = None
    if cursor:
        seq = decode_cursor(cursor, 1)[0]
        if not isinstance(seq, int):
            raise ApiError(400, "cursor is not one this API returned", "bad_cursor")
    query, params = event_sql.exception_listing(
        states=states, before_seq=seq,
        equal={"device_id": device_id, "shipment_id": shipment_id}, limit=limit + 1)
    async with request.app.state.pool.connection() as conn, \
            conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    more, rows = len(rows) > limit, rows[:limit]
    return ExceptionList(items=[item_from_row(r) for r in rows],
                         next_cursor=encode_cursor([rows[-1]["seq"]]) if more else None)


async def principal_name(cur: AsyncCursor[Any], who: Principal) -> str:
    if who.token_id is None:
        return "admin"
    await cur.execute(token_sql.NAME, (who.token_id,))
    row = await cur.fetchone()
    return str(row["name"]) if row else who.token_id


async def fetch_item(cur: AsyncCursor[Any], event_id: str) -> dict[str, Any] | None:
    await cur.execute(event_sql.EXCEPTION_BY_ID, {"id": event_id})
    row: dict[str, Any] | None = await cur.fetchone()
    return row


@router.post("/exceptions/{event_id}/acknowledge", response_model=ExceptionItem,
             summary="Acknowledge an exception (who and when are recorded)",
             responses=error_responses(404, 409, 422))
async def acknowledge(request: Request, who: Writer, event_id: EventId,
                      body: AcknowledgeBody | None = None) -> ExceptionItem:
    body = body or AcknowledgeBody(note=None, by=None)
    note = body.note.strip() if body.note and body.note.strip() else None
    async with request.app.state.pool.connection() as conn, conn.transaction(), \
            conn.cursor(row_factory=dict_row) as cur:
        row = await fetch_item(cur, event_id)
        if row is None:
            raise ApiError(404, "no exception with this id")
        by = body.by.strip() if body.by and body.by.strip() else await principal_name(cur, who)
        await cur.execute(event_sql.ACKNOWLEDGE, (event_id, by, who.token_id, note))
        if await cur.fetchone() is None:
            raise ApiError(409, f"already acknowledged by {row['acknowledged_by']} at "
                           f"{row['acknowledged_at'].isoformat()}", "already_acknowledged")
        event = make_event(exc.EXCEPTION_ACKNOWLEDGED, datetime.now(UTC),
                           device_id=row["device_id"], shipment_id=row["shipment_id"],
                           data={"exception_id": event_id, "exception_type": row["type"],
                                 "by": by, "note": note},
                           discriminator=event_id)
        stored = await store_events(cur, [event])
        row = await fetch_item(cur, event_id)
    await publish_events(request.app, stored)
    assert row is not None
    return item_from_row(row)
