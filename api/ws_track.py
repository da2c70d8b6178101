"""``/ws/track/{tracking_token}``: the customer's stream (SPEC). The same message shapes
as ``/ws/fleet``, for one shipment: a snapshot (its device's position while under way,
plus ``shipment``: the state ``GET /api/v1/track/{token}`` answers), then that device's
positions while under way, and that shipment's events and ETA updates.

Unknown or expired token: an ``error`` message (``not_found``), then close code 4404,
after the same floor time as a known one. Whenever an event of the shipment comes by
(and at least every ``RECHECK_S``), the shipment is read again: positions start at the
pickup and stop at delivery; an expired token closes the stream with 4404.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import psycopg
from fastapi import APIRouter, WebSocket
from psycopg_pool import PoolTimeout

from api import streams
from api.hub import CLOSE_NOT_FOUND, CLOSE_TRY_AGAIN, Filter, Hub, Subscriber
from api.routes_track import (
    at_least,
    find_shipment,
    keep_after_delivery,
    public_state,
    under_way,
    visible_position,
)
from api.streams import ClientMessageError

router = APIRouter()
RECHECK_S = 60.0


def track_filter(row: dict[str, Any]) -> Filter:
    devices = frozenset([row["device_id"]]) if under_way(row) else frozenset[str]()
    return Filter(devices=devices, shipment=row["id"])


def snapshot(row: dict[str, Any]) -> str:
    position = visible_position(row)
    devices = [{"device_id": row["device_id"], **position.model_dump(mode="json")}] \
        if position else []
    return streams.encode({"type": "snapshot", "devices": devices,
                           "shipment": public_state(row).model_dump(mode="json")})


async def recheck(ws: WebSocket, sub: Subscriber, token: str) -> None:
    """Keep the filter in step with the shipment's status; close when the link expires."""
    changed = asyncio.Event()
    sub.on_other = changed.set
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), RECHECK_S)
        changed.clear()
        row = await find_shipment(ws.app.state.pool, token, keep_after_delivery(ws.app))
        if row is None:
            sub.close(CLOSE_NOT_FOUND, "tracking link expired")
            return
        sub.filter = track_filter(row)


async def no_messages(msg: dict[str, Any]) -> None:
    raise ClientMessageError("a tracking stream takes no messages but ping")


async def not_found(ws: WebSocket) -> None:
    await ws.send_text(streams.error_text("not_found", "no shipment for this tracking link"))
    await streams.close(ws, CLOSE_NOT_FOUND, "not found")


@router.websocket("/ws/track/{tracking_token}")
async def track_stream(ws: WebSocket, tracking_token: str) -> None:
    started = time.monotonic()
    pool = ws.app.state.pool
    keep = keep_after_delivery(ws.app)
    try:
        row = await find_shipment(pool, tracking_token, keep)
    except (psycopg.Error, PoolTimeout):
        await streams.deny(ws, 503, "unavailable", "database unavailable, try again")
        return
    await at_least(started)
    await ws.accept()
    if row is None:
        await not_found(ws)
        return
    hub: Hub = ws.app.state.hub
    sub = hub.add(track_filter(row))
    try:
        # read again once subscribed: a change between the first read and the
        # subscription would otherwise be in neither the snapshot nor the stream
        row = await find_shipment(pool, tracking_token, keep)
    except (psycopg.Error, PoolTimeout):
        hub.remove(sub)
        await ws.send_text(streams.error_text("unavailable", "database unavailable, try again"))
        await streams.close(ws, CLOSE_TRY_AGAIN, "database unavailable")
        return
    if row is None:
        hub.remove(sub)
        await not_found(ws)
        return
    sub.filter = track_filter(row)
    sub.push_front(snapshot(row))
    await streams.serve(ws, hub, sub, no_messages, extra=[recheck(ws, sub, tracking_token)])
