"""``GET /api/v1/events`` (SPEC): the event log, filtered by time (``since``/``until``, on
the event's ``ts``), ``type`` (comma-separated; ``geofence.*`` for a family), device,
shipment and geofence.

Order is the log's (``seq``): newest first by default, oldest first with ``since`` (what a
consumer catching up wants) or ``order=asc``; ``next_cursor`` continues either way.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from psycopg.rows import dict_row
from pydantic import AwareDatetime

from api.auth import Admin
from api.errors import ApiError
from api.pagination import decode_cursor, encode_cursor
from api.tracking_schemas import EventList, EventOut
from shiptrack.db.queries import events as event_sql

router = APIRouter(prefix="/api/v1", tags=["events"])

MAX_TYPES = 20


def type_filter(value: str) -> tuple[str, list[Any]]:
    exact, prefixes = [], []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        if part.endswith(".*"):
            prefixes.append(event_sql.type_prefix(part[:-1]))
        else:
            exact.append(part)
    if len(exact) + len(prefixes) > MAX_TYPES:
        raise ApiError(422, f"type: at most {MAX_TYPES} types")
    return event_sql.types_clause(exact, prefixes)


@router.get("/events", response_model=EventList, summary="Events, filtered")
async def list_events(
    request: Request, _: Admin,
    since: Annotated[AwareDatetime | None, Query(description="events at or after")] = None,
    until: Annotated[AwareDatetime | None, Query(description="events before")] = None,
    type: Annotated[str | None, Query(max_length=1000,
                                      examples=["geofence.enter,shipment.*"])] = None,
    device_id: Annotated[str | None, Query(max_length=64)] = None,
    shipment_id: Annotated[str | None, Query(max_length=64)] = None,
    geofence_id: Annotated[str | None, Query(max_length=64)] = None,
    order: Annotated[Literal["asc", "desc"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> EventList:
    direction = order or ("asc" if since is not None else "desc")
    seq = None
    if cursor:
        seq = decode_cursor(cursor, 1)[0]
        if not isinstance(seq, int):
            raise ApiError(400, "cursor is not one this API returned", "bad_cursor")
    query, params = event_sql.listing(
        ascending=direction == "asc", after_seq=seq,
        filters={"since": since, "until": until, "device_id": device_id,
                 "shipment_id": shipment_id, "geofence_id": geofence_id},
        types=type_filter(type) if type else None, limit=limit + 1)
    async with request.app.state.pool.connection() as conn, \
            conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    more, rows = len(rows) > limit, rows[:limit]
    return EventList(items=[EventOut(**r) for r in rows],
                     next_cursor=encode_cursor([rows[-1]["seq"]]) if more else None)
