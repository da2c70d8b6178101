"""Public tracking: ``GET /api/v1/track/{tracking_token}`` (SPEC). No bearer token: the
tracking token is the credential, and it shows its one shipment only.

- The shipment is looked up by the SHA-256 of the token (an index on the digest), in one
  query whatever the outcome, and every answer, found or not, takes at least
  ``TIMING_FLOOR_S``: an unknown token cannot be told from a known one by timing.
- Unknown, malformed or expired (delivered more than
  ``SHIPTRACK_TRACKING_DAYS_AFTER_DELIVERY`` ago) tokens: 404.
- The device's position is shown only while the shipment is under way (picked up, not
  delivered) and never from before the pickup.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from api.errors import ApiError, error_responses
from api.schemas import Milestone, Place, TrackedShipment, TrackPoint
from shiptrack.db.queries import shipments as shipment_sql
from shiptrack.db.queries.positions import DEVICE_COLUMN
from shiptrack.fix import POINT_FIELDS
from shiptrack.shipments import IN_TRANSIT

router = APIRouter(prefix="/api/v1", tags=["public tracking"])

TIMING_FLOOR_S = 0.03
TOKEN_RE = re.compile(r"^[A-Za-z0-9._~-]{1,256}$")
UNDER_WAY = IN_TRANSIT
TrackingToken = Annotated[str, Path(max_length=300, description="the shipment's tracking token",
                                    examples=["kT3v8pQm2xYb7Wn4Zr6Hs1Lc"])]


async def find_shipment(pool: AsyncConnectionPool[Any], token: str,
                        keep: timedelta) -> dict[str, Any] | None:
    """The shipment row of a tracking token (None: unknown, malformed or expired)."""
    if not TOKEN_RE.match(token):
        token = "-"  # the same query all the same: no timing difference
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(shipment_sql.TRACKED, {"token": token, "keep": keep})
        row: dict[str, Any] | None = await cur.fetchone()
    return row


def under_way(row: dict[str, Any]) -> bool:
    return row["status"] in UNDER_WAY


def visible_position(row: dict[str, Any]) -> TrackPoint | None:
    """The device's last fix, if the shipment is under way and the fix is from after the
    pickup."""
    if not under_way(row) or row["last_ts"] is None:
        return None
    if row["picked_up_at"] is not None and row["last_ts"] < row["picked_up_at"]:
        return None
    return TrackPoint(**{n: row[DEVICE_COLUMN[n]] for n in POINT_FIELDS})


def place(spec: Any, geometry: Any) -> Place | None:
    """A point for the map: the given lat/lon, or a geofence's representative point."""
    if isinstance(spec, dict) and isinstance(spec.get("lat"), int | float) \
            and isinstance(spec.get("lon"), int | float):
        return Place(lat=spec["lat"], lon=spec["lon"])
    if isinstance(geometry, dict):
        try:
            from shapely.geometry import shape

            point = shape(geometry).representative_point()
            return Place(lat=point.y, lon=point.x)
        except (ValueError, TypeError, AttributeError, KeyError):
            return None
    return None


def public_state(row: dict[str, Any]) -> TrackedShipment:
    return TrackedShipment(
        id=row["id"], reference=row["reference"], status=row["status"],
        exception=row["exception_reason"] is not None,
        exception_reason=row["exception_reason"], exception_code=row["exception_code"],
        carrier=row["carrier"], carrier_tracking_number=row["carrier_tracking_number"],
        carrier_eta=row["carrier_eta"],
        milestones=[Milestone(**m) for m in row["milestones"]],
        eta=row["eta"], eta_low=row["eta_low"], eta_high=row["eta_high"],
        remaining_m=row["remaining_m"], at_risk=row["at_risk"],
        late_probability=row["late_probability"], eta_first=row["eta_first"],
        promised_by=row["promised_by"], delivered_at=row["delivered_at"],
        origin=place(row["origin"], row["origin_geometry"]),
        destination=place(row["destination"], row["destination_geometry"]),
        last_position=visible_position(row),
    )


async def at_least(started: float, floor: float = TIMING_FLOOR_S) -> None:
    """Sleep until ``floor`` seconds have passed since ``started``."""
    await asyncio.sleep(max(0.0, started + floor - time.monotonic()))


def keep_after_delivery(request_app: Any) -> timedelta:
    return timedelta(days=request_app.state.settings.tracking_days_after_delivery)


@router.get("/track/{tracking_token}", response_model=TrackedShipment,
            summary="A shipment's state, by its tracking token (public)",
            responses=error_responses(404, 422))
async def track(request: Request, tracking_token: TrackingToken) -> TrackedShipment:
    started = time.monotonic()
    row = await find_shipment(request.app.state.pool, tracking_token,
                              keep_after_delivery(request.app))
    state = public_state(row) if row is not None else None
    await at_least(started)
    if state is None:
        raise ApiError(404, "no shipment for this tracking link")
    return state
