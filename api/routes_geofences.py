"""``/api/v1/geofences`` (SPEC): GeoJSON Features in, the same Features out (with ``id``,
``kind`` and times). Bad geometry is a 422 that says what is wrong, and nothing is
stored. Ingest notices every change within ``SHIPTRACK_TRACKING_RELOAD_S`` (a trigger
bumps ``tracking_versions``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from starlette.concurrency import run_in_threadpool

from api.auth import Admin
from api.errors import ApiError, error_responses
from api.pagination import id_page
from api.tracking_schemas import FEATURE_EXAMPLE, Geofence, GeofenceList
from shiptrack.db.queries.tracking import FINAL_SQL
from shiptrack.events import new_id
from shiptrack.geofences import FenceSpec, GeofenceError, corridor_wkb, parse_feature

router = APIRouter(prefix="/api/v1", tags=["geofences"])

COLUMNS = "id, geometry, properties, kind, created_at, updated_at"
GeofenceId = Annotated[str, Path(max_length=64, examples=["gf_01JDX4M2QZ8T5R3W9K6N1B7C0A"])]
FeatureBody = Annotated[dict[str, Any], Body(
    description="a GeoJSON Feature: Polygon or MultiPolygon; Point with properties.radius_m "
    "(metres); LineString with properties.buffer_m (metres). properties.name is required; "
    "optional properties.dwell_s (dwell time) and properties.delivery_zone (true: entering "
    "it puts shipments whose destination it contains out for delivery).",
    examples=[FEATURE_EXAMPLE])]
IN_USE_SQL = """
SELECT count(*) FROM shipments WHERE status NOT IN (""" + FINAL_SQL + """)
  AND (origin ->> 'geofence_id' = %(id)s OR destination ->> 'geofence_id' = %(id)s)
"""


async def validated(body: dict[str, Any]) -> FenceSpec:
    try:
        # a corridor takes a moment (bounded by its cost budget): built here, once, and
        # stored (shape_wkb) so that ingest never buffers it
        return await run_in_threadpool(parse_feature, body)
    except GeofenceError as exc:
        raise ApiError(422, str(exc), "invalid_geometry") from exc


def as_geofence(row: dict[str, Any]) -> Geofence:
    return Geofence(**row)


@router.post("/geofences", status_code=201, response_model=Geofence,
             summary="Create a geofence from a GeoJSON Feature",
             responses=error_responses(422))
async def create_geofence(request: Request, _: Admin, body: FeatureBody) -> Geofence:
    spec = await validated(body)
    async with request.app.state.pool.connection() as conn, \
            conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"INSERT INTO geofences (id, name, kind, geometry, properties, shape_wkb)"
            f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {COLUMNS}",
            (new_id("gf"), spec.name, spec.kind, Jsonb(spec.geometry),
             Jsonb(spec.properties), corridor_wkb(spec.shape)))
        row = await cur.fetchone()
    assert row is not None
    return as_geofence(row)


@router.get("/geofences", response_model=GeofenceList, summary="Geofences, oldest first")
async def list_geofences(
    request: Request, _: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> GeofenceList:
    rows, next_cursor = await id_page(
        request.app.state.pool, f"SELECT {COLUMNS} FROM geofences WHERE true", cursor, limit)
    return GeofenceList(items=[as_geofence(r) for r in rows], next_cursor=next_cursor)


@router.get("/geofences/{geofence_id}", response_model=Geofence, summary="One geofence",
            responses=error_responses(404))
async def get_geofence(request: Request, _: Admin, geofence_id: GeofenceId) -> Geofence:
    async with request.app.state.pool.connection() as conn, \
            conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {COLUMNS} FROM geofences WHERE id = %s", (geofence_id,))
        row = await cur.fetchone()
    if row is None:
        raise ApiError(404, f"no geofence {geofence_id!r}")
    return as_geofence(row)


@router.put("/geofences/{geofence_id}", response_model=Geofence,
            summary="Replace a geofence (a whole GeoJSON Feature)",
            responses=error_responses(404, 422))
async def replace_geofence(request: Request, _: Admin, geofence_id: GeofenceId,
                           body: FeatureBody) -> Geofence:
    spec = await validated(body)
    async with request.app.state.pool.connection() as conn, \
            conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"UPDATE geofences SET name = %s, kind = %s, geometry = %s, properties = %s,"
            f" shape_wkb = %s, updated_at = now() WHERE id = %s RETURNING {COLUMNS}",
            (spec.name, spec.kind, Jsonb(spec.geometry), Jsonb(spec.properties),
             corridor_wkb(spec.shape), geofence_id))
        row = await cur.fetchone()
    if row is None:
        raise ApiError(404, f"no geofence {geofence_id!r}")
    return as_geofence(row)


@router.delete("/geofences/{geofence_id}", status_code=204, response_class=Response,
               summary="Delete a geofence (not one an active shipment starts or ends in)",
               responses=error_responses(404, 409))
async def delete_geofence(request: Request, _: Admin, geofence_id: GeofenceId) -> Response:
    async with request.app.state.pool.connection() as conn, conn.transaction(), \
            conn.cursor() as cur:
        await cur.execute(IN_USE_SQL, {"id": geofence_id})
        used = (await cur.fetchone() or (0,))[0]
        if used:
            raise ApiError(409, f"geofence {geofence_id!r} is the origin or destination of "
                           f"{used} active shipment(s)", "in_use")
        await cur.execute("DELETE FROM geofences WHERE id = %s", (geofence_id,))
        if cur.rowcount == 0:
            raise ApiError(404, f"no geofence {geofence_id!r}")
    return Response(status_code=204)
