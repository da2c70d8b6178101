"""``/ws/fleet``: snapshot first, then deltas from the hub; clients may narrow what they
receive with ``subscribe`` messages (a bbox or a device list)."""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

import msgspec
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from psycopg.rows import dict_row

from api.auth import token_matches, websocket_token
from api.hub import CLOSE_TOO_SLOW, Filter, Hub, Subscriber

log = logging.getLogger("shiptrack.api")
router = APIRouter()
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()

CLOSE_POLICY = 1008
SNAPSHOT_SQL = """
SELECT device_id, last_ts AS ts, lat, lon, speed, heading FROM devices
WHERE last_ts IS NOT NULL ORDER BY device_id
"""


class FilterError(ValueError):
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
                or len(devices) > 10_000:
            raise FilterError("devices must be a list of device ids (at most 10000)")
        flt.devices = frozenset(devices)
    return flt


def error_text(code: str, message: str) -> str:
    return _encoder.encode({"type": "error", "error": {"code": code, "message": message}}).decode()


async def snapshot_text(ws: WebSocket, flt: Filter) -> str:
    async with ws.app.state.pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(SNAPSHOT_SQL)
        rows = await cur.fetchall()
    devices = [r for r in rows if flt.wants(r["device_id"], r["lat"], r["lon"])]
    return _encoder.encode({"type": "snapshot", "devices": devices}).decode()


async def _sender(ws: WebSocket, sub: Subscriber, stall_s: float) -> None:
    while True:
        await sub.wake.wait()
        if sub.close_reason:
            await ws.close(CLOSE_TOO_SLOW, sub.close_reason)
            return
        for text in sub.drain():
            try:
                await asyncio.wait_for(ws.send_text(text), timeout=stall_s)
            except TimeoutError:
                log.info("closing a stream client that stopped reading")
                await ws.close(CLOSE_TOO_SLOW, "too slow: not reading")
                return


async def _receiver(ws: WebSocket, sub: Subscriber) -> None:
    while True:
        raw = await ws.receive_text()
        try:
            sub.filter = parse_subscribe(_decoder.decode(raw))
        except (msgspec.DecodeError, FilterError) as exc:
            await ws.send_text(error_text("bad_message", str(exc)))
            continue
        sub.drain()
        await ws.send_text(await snapshot_text(ws, sub.filter))


@router.websocket("/ws/fleet")
async def fleet(ws: WebSocket) -> None:
    if not token_matches(websocket_token(ws), ws.app.state.admin_token):
        await ws.close(CLOSE_POLICY, "missing or invalid token")
        return
    await ws.accept()
    hub: Hub = ws.app.state.hub
    sub = hub.add()
    try:
        await ws.send_text(await snapshot_text(ws, sub.filter))
        tasks = [asyncio.create_task(_sender(ws, sub, hub.stall_s)),
                 asyncio.create_task(_receiver(ws, sub))]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for t in pending:
            t.cancel()
        for t in done:
            exc = t.exception()
            if exc is not None and not isinstance(exc, WebSocketDisconnect | RuntimeError):
                raise exc
    except WebSocketDisconnect:
        pass
    finally:
        hub.remove(sub)
