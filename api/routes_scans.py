"""``POST /api/v1/scans``: the REST door for barcode/RFID scans, the same as the MQTT topic
``shiptrack/v1/scanners/{scanner_id}/scan`` (SPEC): matched to a shipment by reference,
``pickup`` -> ``picked_up``, ``hub`` -> a hub milestone (and ``in_transit`` if it was not
yet), ``delivery`` -> ``delivered``, ``out_for_delivery``, ``attempt_failed``,
``available_for_pickup``, ``returned`` -> ``returned_to_sender``; ``damaged`` and ``lost``
raise an exception with that code. Milestones follow the allowed transitions only, so a
late or repeated scan records nothing. An unknown reference is a 404 and, like on MQTT, a
dead letter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from psycopg import AsyncCursor
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from api.auth import Admin
from api.errors import ApiError, error_responses
from api.tracking_io import bump_shipments, publish_events, record_milestone, store_events
from api.tracking_schemas import Milestone, ScanIn, ScanResult
from shiptrack.db import tracking_sql as q
from shiptrack.decode import Invalid
from shiptrack.events import Event
from shiptrack.scans import Scan, scan_exception, validate_scan
from shiptrack.shipments import HUB, RANK, SCAN, SCAN_EXCEPTIONS, SCAN_KINDS

router = APIRouter(prefix="/api/v1", tags=["scans"])
TOPIC = "POST /api/v1/scans"


@router.post("/scans", response_model=ScanResult,
             summary="Record a scan: a milestone of the shipment it names",
             responses=error_responses(404, 422))
async def post_scan(request: Request, _: Admin, body: ScanIn) -> ScanResult:
    raw = body.model_dump_json(exclude_none=True).encode()
    try:
        scan = validate_scan(body.scanner_id, body.model_dump(exclude={"scanner_id"}),
                             datetime.now(UTC))
    except Invalid as exc:
        raise ApiError(422, str(exc)) from exc
    data: dict[str, Any] = {"scanner_id": scan.scanner_id}
    if scan.lat is not None and scan.lon is not None:
        data.update(lat=scan.lat, lon=scan.lon)
    async with request.app.state.pool.connection() as conn, conn.transaction(), \
            conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT id, reference, device_id, status FROM shipments"
                          " WHERE reference = %s FOR UPDATE", (scan.shipment_ref,))
        ship = await cur.fetchone()
        if ship is None:  # a dead letter, committed; the caller is told below
            await cur.execute(q.DEAD_LETTER, ("http", TOPIC, "unknown_shipment",
                                              f"no shipment with reference "
                                              f"{scan.shipment_ref[:100]!r}", raw))
        recorded: list[Event] = []
        stored: list[Event] = []
        if ship is not None and SCAN_KINDS[scan.kind] in SCAN_EXCEPTIONS:
            stored = await store_events(cur, await open_scan_exception(cur, ship, scan, data))
            await bump_shipments(cur)
        elif ship is not None:
            kind = SCAN_KINDS[scan.kind]
            events: list[Event | None] = []
            if kind == HUB and RANK[ship["status"]] < RANK["in_transit"]:
                events.append(await record_milestone(cur, ship, "in_transit", scan.ts, SCAN,
                                                     data))
            events.append(await record_milestone(cur, ship, kind, scan.ts, SCAN, data))
            recorded = [e for e in events if e is not None]
            stored = await store_events(cur, recorded)
            if recorded:
                await bump_shipments(cur)
    if ship is None:  # the dead letter is committed; the caller is told
        raise ApiError(404, f"no shipment with reference {scan.shipment_ref!r}",
                       "unknown_shipment")
    await publish_events(request.app, stored)
    return ScanResult(shipment_id=ship["id"], status=ship["status"], recorded=[
        Milestone(ts=e.ts, kind=e.data["kind"], source=SCAN, data=data) for e in recorded])


async def open_scan_exception(cur: AsyncCursor[Any], ship: dict[str, Any], scan: Scan,
                              data: dict[str, Any]) -> list[Event]:
    """A ``damaged`` or ``lost`` scan: an open exception with that code, and its event."""
    x = scan_exception(scan, ship["id"], ship["device_id"], data)
    await cur.execute(q.OPEN_EXCEPTION, {"shipment_id": ship["id"], "kind": x.kind,
                                         "since": scan.ts, "reason": x.reason,
                                         "data": Jsonb(data), "code": x.code})
    return [x.event]
