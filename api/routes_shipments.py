"""``/api/v1/shipments`` (SPEC): create, list (newest first; filters ``status``,
``at_risk``, ``device_id``, ``exception``, ``exception_code``, ``carrier``), read and patch
shipments. A shipment carried by a parcel carrier has ``carrier`` and
``carrier_tracking_number``; then ``device_id`` and ``origin`` are optional.

A shipment's state is read in one query: its row, milestones, open exceptions and the
device's last position (while not delivered; once delivered, its position at delivery).
Every write bumps the shipments version so that ingest picks the change up.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from psycopg import AsyncCursor
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from starlette.concurrency import run_in_threadpool

from api.auth import Admin
from api.errors import ApiError, error_responses
from api.pagination import decode_cursor, encode_cursor
from api.subscriptions_io import checked_all, insert_all, refuse_private
from api.tracking_io import bump_shipments, publish_events, record_milestone, store_events
from api.tracking_schemas import (
    ExceptionCode,
    LastPosition,
    Shipment,
    ShipmentCreate,
    ShipmentList,
    ShipmentPatch,
    Status,
)
from shiptrack.db.queries import shipments as shipment_sql
from shiptrack.db.queries import tracking as q
from shiptrack.events import (
    SHIPMENT_EXCEPTION,
    SHIPMENT_EXCEPTION_CLEARED,
    Event,
    make_event,
    new_id,
)
from shiptrack.fix import POINT_FIELDS
from shiptrack.geofences import GeofenceError, corridor_shape, corridor_wkb, parse_route
from shiptrack.shipments import (
    API,
    FINAL,
    RANK,
    TRANSITIONS,
    Place,
    can_move,
    limits_json,
    milestone_event,
    parse_limits,
    parse_place,
)
from shiptrack.tracking_tokens import known_token, token_for

router = APIRouter(prefix="/api/v1", tags=["shipments"])

ShipmentId = Annotated[str, Path(max_length=64, examples=["shp_01JDX4M2QZ8T5R3W9K6N1B7C0A"])]


def tracking_url(request: Request, token: str) -> str:
    base = request.app.state.settings.public_url
    return f"{base.rstrip('/')}/t/{token}" if base else f"/t/{token}"


def shipment_from_row(request: Request, row: dict[str, Any]) -> Shipment:
    exceptions = row["exceptions"]
    position = None
    if row["pos_ts"] is not None:
        position = LastPosition(**{n: row[f"pos_{n}"] for n in POINT_FIELDS})
    fields = {k: v for k, v in row.items() if not k.startswith(("pos_", "tracking_token"))}
    token = known_token(request.app.state.tracking_key, row["id"], row["tracking_token_hash"])
    return Shipment(
        **fields, tracking_token=token,
        tracking_url=tracking_url(request, token) if token else None,
        last_position=position, exception=bool(exceptions),
        exception_reason="; ".join(x["reason"] for x in exceptions) or None,
        exception_code=exceptions[-1]["code"] if exceptions else None,
    )


async def fetch_shipment(cur: AsyncCursor[Any], shipment_id: str) -> dict[str, Any] | None:
    await cur.execute(shipment_sql.BY_ID, (shipment_id,))
    row: dict[str, Any] | None = await cur.fetchone()
    return row


async def checked_place(cur: AsyncCursor[Any], obj: Any, what: str, radius: float) -> Place:
    place = parse_place(obj, what, radius)  # ShipmentError: a 422 (api/errors.py)
    if place.geofence_id is not None:
        await cur.execute(shipment_sql.GEOFENCE_EXISTS, (place.geofence_id,))
        if await cur.fetchone() is None:
            raise ApiError(422, f"{what}.geofence_id: no geofence {place.geofence_id!r}")
    return place


def checked_route(route: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if route is None else parse_route(route)  # GeofenceError: a 422


async def built_corridor(route: dict[str, Any] | None, width: float) -> bytes | None:
    """A route's corridor, built here once (within the cost budget, else 422) and stored
    (``route_corridor_wkb``), so that ingest never buffers it."""
    if route is None:
        return None
    try:
        shape = await run_in_threadpool(corridor_shape, route["coordinates"], width,
                                        "route_corridor_m")
    except GeofenceError as exc:
        raise GeofenceError(f"route: {exc}") from exc
    return corridor_wkb(shape)


async def patched_corridor(cur: AsyncCursor[Any], shipment_id: str, body: ShipmentPatch,
                           given: set[str], default_m: float) -> bytes | None:
    """The corridor of the route and width a PATCH leaves the shipment with."""
    await cur.execute(shipment_sql.ROUTE_OF, (shipment_id,))
    row = await cur.fetchone() or {}
    route = checked_route(body.route) if "route" in given else row.get("route")
    width = body.route_corridor_m if "route_corridor_m" in given else row.get(
        "route_corridor_m")
    return await built_corridor(route, float(width or default_m))


def checked_limits(request: Request, limits: dict[str, Any] | None) -> dict[str, Any]:
    # ShipmentError: a 422 (api/errors.py)
    return limits_json(parse_limits(limits, request.app.state.settings.sensor_excursion_s))


def created_at(body: ShipmentCreate) -> datetime:
    """The time of the ``created`` milestone: ``created_at`` if given (never in the future),
    else now."""
    now = datetime.now(UTC)
    if body.created_at is None:
        return now
    if body.created_at > now:
        raise ApiError(422, "created_at: must not be in the future")
    return body.created_at.astimezone(UTC)


@router.post("/shipments", status_code=201, response_model=Shipment,
             summary="Create a shipment (answers its tracking token and URL)",
             responses=error_responses(409, 422))
async def create_shipment(request: Request, _: Admin, body: ShipmentCreate) -> Shipment:
    settings = request.app.state.settings
    check_carrier(body.carrier, body.carrier_tracking_number)
    if body.carrier is None and (body.device_id is None or body.origin is None):
        raise ApiError(422, "device_id and origin are required unless the shipment has a "
                            "carrier and carrier_tracking_number")
    route, limits = checked_route(body.route), checked_limits(request, body.sensor_limits)
    corridor = await built_corridor(route, body.route_corridor_m or settings.route_corridor_m)
    wanted = checked_all(body.subscriptions)
    await refuse_private(wanted, settings.webhook_allow_private, "subscriptions[{i}].")
    now = created_at(body)
    sid = new_id("shp", now)
    token = token_for(request.app.state.tracking_key, sid)  # stored as its digest
    async with request.app.state.pool.connection() as conn, conn.transaction(), \
            conn.cursor(row_factory=dict_row) as cur:
        origin = None if body.origin is None else await checked_place(
            cur, body.origin, "origin", settings.shipment_radius_m)
        destination = await checked_place(cur, body.destination, "destination",
                                          settings.shipment_radius_m)
        await cur.execute(
            shipment_sql.INSERT,
            (sid, body.reference, body.device_id, token,
             None if origin is None else Jsonb(origin.as_json()),
             Jsonb(destination.as_json()), body.promised_by,
             None if route is None else Jsonb(route), body.route_corridor_m, Jsonb(limits),
             body.carrier, body.carrier_tracking_number, corridor, now))
        ship = await cur.fetchone()
        if ship is None:
            raise ApiError(409, f"a shipment with reference {body.reference!r} exists",
                           "duplicate_reference")
        await cur.execute(shipment_sql.INSERT_CREATED, (sid, now, API))
        event = milestone_event(sid, body.reference, body.device_id, "created", now, API,
                                "created")
        subscriptions = await insert_all(cur, sid, body.reference, wanted)
        stored = await store_events(cur, [event])
        await bump_shipments(cur)
        row = await fetch_shipment(cur, sid)
    await publish_events(request.app, stored)
    assert row is not None
    created = shipment_from_row(request, row)
    created.subscriptions = subscriptions
    return created


@router.get("/shipments", response_model=ShipmentList, summary="Shipments, newest first")
async def list_shipments(
    request: Request, _: Admin,
    status: Annotated[Status | None, Query()] = None,
    at_risk: Annotated[bool | None, Query()] = None,
    exception: Annotated[bool | None, Query(description="has an open exception")] = None,
    exception_code: Annotated[ExceptionCode | None, Query(
        description="has an open exception with this code")] = None,
    carrier: Annotated[str | None, Query(max_length=40)] = None,
    device_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> ShipmentList:
    query, params = shipment_sql.listing(
        before_id=str(decode_cursor(cursor, 1)[0]) if cursor else None,
        equal={"s.status": status, "s.at_risk": at_risk, "s.device_id": device_id,
               "s.carrier": carrier},
        exception=exception, exception_code=exception_code, limit=limit + 1)
    async with request.app.state.pool.connection() as conn, \
            conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    more, rows = len(rows) > limit, rows[:limit]
    return ShipmentList(items=[shipment_from_row(request, r) for r in rows],
                        next_cursor=encode_cursor([rows[-1]["id"]]) if more else None)


@router.get("/shipments/{shipment_id}", response_model=Shipment, summary="One shipment",
            responses=error_responses(404))
async def get_shipment(request: Request, _: Admin, shipment_id: ShipmentId) -> Shipment:
    async with request.app.state.pool.connection() as conn, \
            conn.cursor(row_factory=dict_row) as cur:
        row = await fetch_shipment(cur, shipment_id)
    if row is None:
        raise ApiError(404, f"no shipment {shipment_id!r}")
    return shipment_from_row(request, row)


@router.patch("/shipments/{shipment_id}", response_model=Shipment,
              summary="Change a shipment: status (forward only), promise, route, sensor "
                      "limits; clear or raise an exception",
              responses=error_responses(404, 409, 422))
async def patch_shipment(request: Request, _: Admin, shipment_id: ShipmentId,
                         body: ShipmentPatch) -> Shipment:
    given = body.model_fields_set
    if "exception" in given and body.exception is None:
        raise ApiError(422, "exception: true or false")
    if body.exception is True and not body.exception_reason:
        raise ApiError(422, "exception: true needs an exception_reason")
    changes: dict[str, Any] = {}
    if "promised_by" in given:
        changes["promised_by"] = body.promised_by
    if "route" in given:
        route = checked_route(body.route)
        changes["route"] = None if route is None else Jsonb(route)
    if "route_corridor_m" in given:
        changes["route_corridor_m"] = body.route_corridor_m
    if "sensor_limits" in given:
        changes["sensor_limits"] = Jsonb(checked_limits(request, body.sensor_limits))
    if given & {"carrier", "carrier_tracking_number"}:
        check_carrier(body.carrier, body.carrier_tracking_number)
        changes["carrier"] = body.carrier
        changes["carrier_tracking_number"] = body.carrier_tracking_number
    now = datetime.now(UTC)
    async with request.app.state.pool.connection() as conn, conn.transaction(), \
            conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(shipment_sql.LOCK, (shipment_id,))
        ship = await cur.fetchone()
        if ship is None:
            raise ApiError(404, f"no shipment {shipment_id!r}")
        if changes.get("carrier", "") is None and (ship["device_id"] is None
                                                   or ship["no_origin"]):
            raise ApiError(422, "this shipment has no device_id or origin of its own: its "
                                "carrier cannot be removed")
        if "route" in given or "route_corridor_m" in given:
            changes["route_corridor_wkb"] = await patched_corridor(
                cur, shipment_id, body, given, request.app.state.settings.route_corridor_m)
        events: list[Event] = []
        if body.status is not None and body.status != ship["status"]:
            events += await set_status(cur, ship, body.status, now)
        if changes:
            await cur.execute(shipment_sql.update(changes), [*changes.values(), shipment_id])
        if body.exception is not None:
            events += await set_exception(cur, ship, body.exception, body.exception_reason,
                                          now, body.exception_code or "other")
        stored = await store_events(cur, events)
        await bump_shipments(cur)
        row = await fetch_shipment(cur, shipment_id)
    await publish_events(request.app, stored)
    assert row is not None
    return shipment_from_row(request, row)


async def set_status(cur: AsyncCursor[Any], ship: dict[str, Any], status: str,
                     now: datetime) -> list[Event]:
    if not can_move(ship["status"], status):
        backwards = ship["status"] in FINAL or RANK[status] < RANK[ship["status"]]
        allowed = ", ".join(sorted(TRANSITIONS[ship["status"]])) or "none: it is final"
        raise ApiError(409, f"status is {ship['status']}; it may move to {allowed}",
                       "status_backwards" if backwards else "status_not_allowed")
    event = await record_milestone(cur, ship, status, now, API, {})
    return [] if event is None else [event]


async def set_exception(cur: AsyncCursor[Any], ship: dict[str, Any], raise_it: bool,
                        reason: str | None, now: datetime, code: str = "other") -> list[Event]:
    common = {"device_id": ship["device_id"], "shipment_id": ship["id"],
              "discriminator": secrets.token_hex(4)}
    if raise_it:
        await cur.execute(q.OPEN_EXCEPTION, {"shipment_id": ship["id"], "kind": "manual",
                                             "since": now, "reason": reason,
                                             "data": Jsonb({}), "code": code})
        return [make_event(SHIPMENT_EXCEPTION, now, data={"kind": "manual", "code": code,
                                                          "reason": reason, "source": API},
                           **common)]
    await cur.execute(shipment_sql.CLEAR_EXCEPTIONS, (ship["id"],))
    cleared = await cur.fetchall()
    if not cleared:
        return []
    return [make_event(SHIPMENT_EXCEPTION_CLEARED, now, data={
        "cleared": [{"kind": r["kind"], "reason": r["reason"], "code": r["code"]}
                    for r in cleared],
        "source": API}, **common)]


def check_carrier(carrier: str | None, number: str | None) -> None:
    if (carrier is None) != (number is None):
        raise ApiError(422, "carrier and carrier_tracking_number go together: give both or "
                            "neither")
