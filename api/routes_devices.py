"""``/api/v1/devices``: devices with their last position."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from psycopg.rows import dict_row

from api.auth import Admin
from api.errors import ApiError
from api.pagination import decode_cursor, encode_cursor
from api.schemas import Device, DeviceList, Position

router = APIRouter(prefix="/api/v1", tags=["devices"])

DEVICE_SELECT = """
SELECT device_id, first_seen_at, last_received_at, last_ts, lat, lon, speed, heading,
       accuracy, alt, battery, sensors, attrs
FROM devices
"""
DeviceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


def device_from_row(row: dict[str, Any]) -> Device:
    position = None
    if row["last_ts"] is not None:
        position = Position(
            ts=row["last_ts"], lat=row["lat"], lon=row["lon"], speed=row["speed"],
            heading=row["heading"], accuracy=row["accuracy"], alt=row["alt"],
            battery=row["battery"], sensors=row["sensors"],
        )
    return Device(device_id=row["device_id"], first_seen_at=row["first_seen_at"],
                  last_seen_at=row["last_received_at"], last_position=position,
                  attrs=row["attrs"])


@router.get("/devices", response_model=DeviceList, summary="Devices with their last position")
async def list_devices(
    request: Request,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> DeviceList:
    after = str(decode_cursor(cursor, 1)[0]) if cursor else ""
    pool = request.app.state.pool
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            DEVICE_SELECT + " WHERE device_id > %s ORDER BY device_id LIMIT %s",
            (after, limit + 1),
        )
        rows = await cur.fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [device_from_row(r) for r in rows]
    next_cursor = encode_cursor([rows[-1]["device_id"]]) if more and rows else None
    return DeviceList(items=items, next_cursor=next_cursor)


@router.get("/devices/{device_id}", response_model=Device, summary="One device")
async def get_device(request: Request, _: Admin, device_id: DeviceId) -> Device:
    pool = request.app.state.pool
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(DEVICE_SELECT + " WHERE device_id = %s", (device_id,))
        row = await cur.fetchone()
    if row is None:
        raise ApiError(404, f"no device {device_id!r}")
    return device_from_row(row)
