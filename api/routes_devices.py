"""``/api/v1/devices``: devices with their last position."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from psycopg.rows import dict_row

from api.auth import Reader
from api.errors import ApiError, error_responses
from api.pagination import decode_cursor, page
from api.schemas import Device, DeviceList, DeviceTrack, Position, TrackPoint
from shiptrack.db.queries import devices as device_sql
from shiptrack.db.queries import meta as meta_sql
from shiptrack.db.queries.positions import DEVICE_COLUMN

router = APIRouter(prefix="/api/v1", tags=["devices"])

DeviceId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", examples=["truck-17"])]
RFC3339 = re.compile(
    r"^((?:000[1-9]|00[1-9]\d|0[1-9]\d\d|[1-9]\d{3})"
    r"-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]))[Tt ]"
    r"((?:[01]\d|2[0-3]):[0-5]\d):([0-5]\d|60)(\.\d+)?([Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)$")
FromParam = Annotated[str | None, Query(
    alias="from", max_length=40, pattern=RFC3339.pattern,
    description="RFC 3339 date-time; default: to - 24 h",
    examples=["2026-11-25T10:00:00Z"])]
ToParam = Annotated[str | None, Query(
    max_length=40, pattern=RFC3339.pattern, description="RFC 3339 date-time; default: now",
    examples=["2026-11-26T10:00:00Z"])]


def device_from_row(row: dict[str, Any]) -> Device:
    position = None
    if row["last_ts"] is not None:
        # Position's fields are what a position shows (shiptrack.fix.SHOWN_FIELDS)
        position = Position(**{n: row[DEVICE_COLUMN[n]] for n in Position.model_fields})
    return Device(device_id=row["device_id"], first_seen_at=row["first_seen_at"],
                  last_seen_at=row["last_received_at"], last_position=position,
                  attrs=row["attrs"])


@router.get("/devices", response_model=DeviceList, summary="Devices with their last position")
async def list_devices(
    request: Request,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> DeviceList:
    after = str(decode_cursor(cursor, 1)[0]) if cursor else ""
    pool = request.app.state.pool
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(device_sql.PAGE, (after, limit + 1))
        rows = await cur.fetchall()
    rows, next_cursor = page(rows, limit, "device_id")
    return DeviceList(items=[device_from_row(r) for r in rows], next_cursor=next_cursor)


@router.get("/devices/{device_id}", response_model=Device, summary="One device",
            responses=error_responses(404))
async def get_device(request: Request, _: Reader, device_id: DeviceId) -> Device:
    pool = request.app.state.pool
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(device_sql.BY_ID, (device_id,))
        row = await cur.fetchone()
    if row is None:
        raise ApiError(404, f"no device {device_id!r}")
    return device_from_row(row)


def parse_rfc3339(value: str, name: str) -> datetime:
    """A strict RFC 3339 date-time with an offset (422 otherwise), as UTC. A leap second
    (:60) is read as the last microsecond of its minute."""
    match = RFC3339.match(value)
    if match is None:
        raise ApiError(422, f"{name}: not an RFC 3339 date-time (e.g. 2026-11-26T10:00:00Z)")
    day, minute, second, frac, offset = match.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset
    frac = ".999999" if second == "60" else (frac or "")[:7]
    second = "59" if second == "60" else second
    try:
        return datetime.fromisoformat(f"{day}T{minute}:{second}{frac}{offset}").astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ApiError(422, f"{name}: {exc}") from exc


def track_window(from_: str | None, to: str | None) -> tuple[datetime, datetime]:
    """``from``/``to`` of a track request with their defaults (422 when unusable)."""
    end = parse_rfc3339(to, "to") if to else datetime.now(UTC)
    try:
        start = parse_rfc3339(from_, "from") if from_ else end - timedelta(hours=24)
    except OverflowError as exc:
        raise ApiError(422, "from: out of range") from exc
    if start >= end:
        raise ApiError(422, "from must be before to")
    return start, end


async def storage_mode(request: Request) -> str:
    """'timescale' or 'plain', read once per process from shiptrack_meta."""
    mode: str | None = getattr(request.app.state, "storage_mode", None)
    if mode is None:
        async with request.app.state.pool.connection() as conn:
            row = await (await conn.execute(meta_sql.STORAGE_MODE)).fetchone()
        mode = "timescale" if row and row[0] == "timescale" else "plain"
        request.app.state.storage_mode = mode
    return mode


@router.get("/devices/{device_id}/track", response_model=DeviceTrack, response_model_by_alias=True,
            summary="A device's history, downsampled on the database",
            responses=error_responses(404, 422))
async def device_track(
    request: Request, _: Reader, device_id: DeviceId,
    from_: FromParam = None,
    to: ToParam = None,
    max_points: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> DeviceTrack:
    """Fixes between ``from`` (default: ``to`` minus 24 h) and ``to`` (default: now), in
    time order. With more than ``max_points`` fixes, the span of those fixes (within the
    window) is cut into ``max_points`` equal buckets and the last fix of each is kept."""
    start, end = track_window(from_, to)
    params: dict[str, Any] = {"d": device_id, "f": start, "t": end, "n": max_points + 1}
    pool = request.app.state.pool
    mode = await storage_mode(request)
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(device_sql.EXISTS, (device_id,))
        if await cur.fetchone() is None:
            raise ApiError(404, f"no device {device_id!r}")
        await cur.execute(device_sql.TRACK_RAW, params)
        rows = await cur.fetchall()
        downsampled = len(rows) > max_points
        if downsampled:
            await cur.execute(device_sql.TRACK_SPAN, params)
            first, last = (await cur.fetchone() or {}).values()
            span_us = (last - first) // timedelta(microseconds=1)
            params["w"] = timedelta(microseconds=span_us // max_points + 1)
            params["f"] = first
            await cur.execute(device_sql.track_bucketed(mode), params)
            rows = await cur.fetchall()
    return DeviceTrack.model_validate({
        "device_id": device_id, "from": start, "to": end, "max_points": max_points,
        "downsampled": downsampled, "items": [TrackPoint(**r) for r in rows]})
