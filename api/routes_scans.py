"""``POST /api/v1/scans``: the REST door for barcode/RFID scans, the same as the MQTT topic
``shiptrack/v1/scanners/{scanner_id}/scan`` (SPEC): matched to a shipment by reference,
``pickup`` -> ``picked_up``, ``hub`` -> a hub milestone (and ``in_transit`` if it was not
yet), ``delivery`` -> ``delivered``. Milestones never go backwards, so a late or repeated
scan records nothing. An unknown reference is a 404 and, like on MQTT, a dead letter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from psycopg.rows import dict_row

from api.auth import Admin
from api.errors import ApiError, error_responses
from api.tracking_io import bump_shipments, publish_events, record_milestone, store_events
from api.tracking_schemas import Milestone, ScanIn, ScanResult
from shiptrack.db import tracking_sql as q
from shiptrack.decode import Invalid
from shiptrack.events import Event
from shiptrack.scans import validate_scan
from shiptrack.shipments import HUB, RANK, SCAN_KINDS

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
        if ship is None:
            await cur.execute(q.DEAD_LETTER, ("http", TOPIC, "unknown_shipment",
                                              f"no shipment with reference "
                                              f"{scan.shipment_ref[:100]!r}", raw))
        else:
            kind = SCAN_KINDS[scan.kind]
            events: list[Event | None] = []
            if kind == HUB and RANK[ship["status"]] < RANK["in_transit"]:
                events.append(await record_milestone(cur, ship, "in_transit", scan.ts, "scan",
                                                     data))
            events.append(await record_milestone(cur, ship, kind, scan.ts, "scan", data))
            recorded: list[Event] = [e for e in events if e is not None]
            stored = await store_events(cur, recorded)
            if recorded:
                await bump_shipments(cur)
    if ship is None:  # the dead letter is committed; the caller is told
        raise ApiError(404, f"no shipment with reference {scan.shipment_ref!r}",
                       "unknown_shipment")
    await publish_events(request.app, stored)
    return ScanResult(shipment_id=ship["id"], status=ship["status"], recorded=[
        Milestone(ts=e.ts, kind=e.data["kind"], source="scan", data=data) for e in recorded])
