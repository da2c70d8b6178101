"""``/ws/fleet``: snapshot first, then deltas from the hub; clients may narrow what they
receive with ``subscribe`` messages (a bbox or a device list). Needs a bearer token with
the ``read`` scope (``Authorization`` header or ``?token=``)."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, WebSocket
from psycopg.rows import dict_row

from api import streams
from api.auth import Principal, check_credentials, websocket_token
from api.errors import ApiError
from api.hub import Filter, Hub, Subscriber
from api.streams import ClientMessageError
from api.ws_tickets import redeem
from shiptrack.db.queries import devices as device_sql

router = APIRouter()

MAX_DEVICES = 10_000


class FilterError(ClientMessageError):
    pass


def parse_subscribe(msg: Any) -> Filter:
    """A ``subscribe`` message to a filter, or ``FilterError`` saying what is wrong."""
    if not isinstance(msg, dict) or msg.get("type") != "subscribe":
        raise FilterError('expected {"type":"subscribe", "bbox": [...]} or "devices": [...]')
    bbox, devices = msg.get("bbox"), msg.get("devices")
    flt = Filter()
    if bbox is not None:
        if (not isinstance(bbox, list) or len(bbox) != 4 or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in bbox)):
            raise FilterError("bbox must be [min_lon, min_lat, max_lon, max_lat] numbers")
        min_lon, min_lat, max_lon, max_lat = (float(v) for v in bbox)
        if not (-180 <= min_lon <= 180 and -180 <= max_lon <= 180
                and -90 <= min_lat <= max_lat <= 90):
            raise FilterError("bbox is out of range or min_lat > max_lat")
        flt.bbox = (min_lon, min_lat, max_lon, max_lat)
    if devices is not None:
        if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices) \
                or len(devices) > MAX_DEVICES:
            raise FilterError("devices must be a list of device ids (at most 10000)")
        flt.devices = frozenset(devices)
    return flt


async def snapshot_text(ws: WebSocket, flt: Filter) -> str:
    async with ws.app.state.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(device_sql.SNAPSHOT)
        rows = await cur.fetchall()
    devices = [r for r in rows if flt.wants(r["device_id"], r["lat"], r["lon"])]
    return streams.encode({"type": "snapshot", "devices": devices})


async def stream_principal(ws: WebSocket) -> Principal | None:
    """A single-use ``?ticket=``, else the bearer token (header or ``?token=``)."""
    ticket = ws.query_params.get("ticket")
    if ticket is not None:
        return await check_credentials(ws, ticket, redeem)
    token = websocket_token(ws)
    return await check_credentials(ws, token) if token else None


@router.websocket("/ws/fleet")
async def fleet(ws: WebSocket) -> None:
    try:
        principal = await stream_principal(ws)
    except ApiError as exc:  # the token store is unreachable, or 429
        await streams.deny(ws, exc.status, exc.code, exc.message, exc.headers)
        return
    if principal is None:
        await streams.deny(ws, 401, "unauthorized", "missing or invalid token")
        return
    if not principal.allows("read"):
        await streams.deny(ws, 403, "forbidden", "this token lacks the 'read' scope")
        return
    await ws.accept()
    hub: Hub = ws.app.state.hub
    sub = hub.add()

    async def handle(msg: dict[str, Any]) -> None:
        flt = parse_subscribe(msg)
        set_filter(sub, flt)
        sub.push_front(await snapshot_text(ws, flt))

    try:
        sub.push_front(await snapshot_text(ws, sub.filter))
    except BaseException:
        hub.remove(sub)
        raise
    await streams.serve(ws, hub, sub, handle)


def set_filter(sub: Subscriber, flt: Filter) -> None:
    """A new filter: positions pending under the old one are dropped (a snapshot follows)."""
    sub.filter = flt
    sub.positions.clear()
