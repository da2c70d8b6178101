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

from fastapi import APIRouter, Request
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from api.auth import Admin
from api.errors import ApiError, error_responses
from api.tracking_io import bump_shipments, publish_events, record_milestone, store_events
from api.tracking_schemas import Milestone, ScanIn, ScanResult
from shiptrack.db.queries import positions as pq
from shiptrack.db.queries import tracking as q
from shiptrack.decode import Invalid
from shiptrack.events import Event
from shiptrack.scans import scan_action, unknown_reference, validate_scan
from shiptrack.shipments import SCAN

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
    recorded: list[Event] = []
    async with request.app.state.pool.connection() as conn, conn.transaction(), \
            conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(q.SHIPMENT_BY_REFERENCE, (scan.shipment_ref,))
        ship = await cur.fetchone()
        if ship is None:  # a dead letter, committed; the caller is told below
            await cur.execute(pq.DEAD_LETTER, ("http", TOPIC, "unknown_shipment",
                                               unknown_reference(scan.shipment_ref), raw))
            stored: list[Event] = []
        else:
            action = scan_action(scan, ship["id"], ship["device_id"], ship["status"])
            x = action.exception
            events: list[Event] = [] if x is None else [x.event]
            if x is not None:  # damaged or lost: an exception with that code
                await cur.execute(q.OPEN_EXCEPTION, {
                    "shipment_id": ship["id"], "kind": x.kind, "since": scan.ts,
                    "reason": x.reason, "data": Jsonb(action.data), "code": x.code})
            for kind in action.milestones:
                event = await record_milestone(cur, ship, kind, scan.ts, SCAN, action.data)
                if event is not None:
                    recorded.append(event)
            stored = await store_events(cur, events + recorded)
            if x is not None or recorded:
                await bump_shipments(cur)
    if ship is None:  # the dead letter is committed; the caller is told
        raise ApiError(404, f"no shipment with reference {scan.shipment_ref!r}",
                       "unknown_shipment")
    await publish_events(request.app, stored)
    return ScanResult(shipment_id=ship["id"], status=ship["status"], recorded=[
        Milestone(ts=e.ts, kind=e.data["kind"], source=SCAN, data=action.data)
        for e in recorded])
