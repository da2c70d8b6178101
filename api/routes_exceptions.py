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
from shiptrack.events import make_event

router = APIRouter(prefix="/api/v1", tags=["exceptions"])
EventId = Annotated[str, Path(pattern=r"^evt_[0-9A-Z]{26}$",
                              examples=["evt_01JDX4M2QZ8T5R3W9K6N1B7C0A"])]

# A detector's exception also has the detector's own event (same shipment and time, the
# type its kind names): its data (sensor, value, distance, ...) is the detail shown.
DETECTION_SQL = """
SELECT d.type, d.data FROM events d
WHERE e.type = 'shipment.exception' AND e.data ->> 'source' = 'device'
  AND d.shipment_id = e.shipment_id AND d.ts = e.ts
  AND d.type = split_part(e.data ->> 'kind', ':', 1)
LIMIT 1
"""
SELECT = f"""
SELECT e.seq, e.id, e.type, e.ts, e.device_id, e.shipment_id, e.data, s.reference,
       res.id AS resolved_id, res.type AS resolved_type, res.ts AS resolved_ts,
       a.acknowledged_at, a.acknowledged_by, a.note,
       det.type AS detection_type, det.data AS detection_data
FROM events e
LEFT JOIN LATERAL ({exc.resolution_sql()}) res ON true
LEFT JOIN LATERAL ({DETECTION_SQL}) det ON true
LEFT JOIN exception_acks a ON a.event_id = e.id
LEFT JOIN shipments s ON s.id = e.shipment_id
WHERE {exc.start_sql()}
"""
STATE_SQL = {
    "open": "(res.id IS NULL AND a.event_id IS NULL)",
    "acknowledged": "(res.id IS NULL AND a.event_id IS NOT NULL)",
    "resolved": "(res.id IS NOT NULL)",
}


def parse_states(value: str | None) -> list[str]:
    states = [s.strip() for s in (value or "").split(",") if s.strip()]
    bad = [s for s in states if s not in STATE_SQL]
    if bad:
        raise ApiError(422, f"state: {bad[0]!r} is not one of open, acknowledged, resolved")
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
    sql = SELECT
    params: dict[str, Any] = {"limit": limit + 1}
    if states:
        sql += " AND (" + " OR ".join(STATE_SQL[s] for s in states) + ")"
    if cursor:
        seq = decode_cursor(cursor, 1)[0]
        if not isinstance(seq, int):
            raise ApiError(400, "cursor is not one this API returned", "bad_cursor")
        sql += " AND e.seq < %(seq)s"
        params["seq"] = seq
    for column, value in (("device_id", device_id), ("shipment_id", shipment_id)):
        if value is not None:
            sql += f" AND e.{column} = %({column})s"
            params[column] = value
    sql += " ORDER BY e.seq DESC LIMIT %(limit)s"
    async with request.app.state.pool.connection() as conn, \
            conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        rows = await cur.fetchall()
    more, rows = len(rows) > limit, rows[:limit]
    return ExceptionList(items=[item_from_row(r) for r in rows],
                         next_cursor=encode_cursor([rows[-1]["seq"]]) if more else None)


async def principal_name(cur: AsyncCursor[Any], who: Principal) -> str:
    if who.token_id is None:
        return "admin"
    await cur.execute("SELECT name FROM api_tokens WHERE id = %s", (who.token_id,))
    row = await cur.fetchone()
    return str(row["name"]) if row else who.token_id


async def fetch_item(cur: AsyncCursor[Any], event_id: str) -> dict[str, Any] | None:
    await cur.execute(SELECT + " AND e.id = %(id)s", {"id": event_id})
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
        await cur.execute(
            "INSERT INTO exception_acks (event_id, acknowledged_by, token_id, note)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
            (event_id, by, who.token_id, note))
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
