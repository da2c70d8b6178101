"""Applying a ``CarrierUpdate`` to the shipments with its tracking number, in the caller's
transaction: the one path for pushed (webhooks) and pulled (karrio polling) updates.

Per shipment (locked, in id order), per checkpoint in time order: the checkpoint is
stored once (``carrier_checkpoints``, keyed by provider and checkpoint key); only a new
one acts. Its meaning (``shiptrack.carriers.mapping``) records a milestone (source
``carrier``) when the transition is allowed, through the same guarded statement as every
other door; raises the carrier exception with its code (``shipment.exception``); or, for a
status without a code, clears an open carrier exception (``shipment.exception_cleared``).
The carrier's estimated delivery is kept in ``carrier_eta``. A checkpoint from before the
shipment was created acts as of its creation (``created`` stays first in the timeline);
its own time is in the milestone's ``data.carrier_ts`` and in ``carrier_checkpoints``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncCursor
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from api.tracking_io import bump_shipments, record_milestone
from shiptrack.carriers.updates import CarrierUpdate, Checkpoint
from shiptrack.db.queries import carriers as carrier_sql
from shiptrack.db.queries import tracking as q
from shiptrack.events import SHIPMENT_EXCEPTION, SHIPMENT_EXCEPTION_CLEARED, Event, make_event
from shiptrack.shipments import CARRIER

KIND = "carrier"  # shipment_exceptions.kind of the carrier's exception (one at a time)


@dataclass(slots=True)
class Applied:
    shipments: list[str] = field(default_factory=list)  # matched by the tracking number
    new_checkpoints: int = 0
    events: list[Event] = field(default_factory=list)  # to store, in order


async def apply_update(cur: AsyncCursor[Any], update: CarrierUpdate) -> Applied:
    out = Applied()
    await cur.execute(carrier_sql.SHIPMENTS_OF_NUMBER, (update.tracking_number,))
    ships = await cur.fetchall()
    out.shipments = [s["id"] for s in ships]
    if update.ignored:
        return out
    for ship in ships:
        changed = False
        for cp in sorted(update.checkpoints, key=lambda c: (c.ts, c.key)):
            if await _store(cur, ship["id"], update.provider, cp):
                out.new_checkpoints += 1
                changed = True
                out.events += await _act(cur, ship, update, cp)
        if update.eta is not None and update.eta != ship["carrier_eta"]:
            await cur.execute(carrier_sql.SET_ETA, (update.eta, ship["id"]))
            changed = True
        if changed:
            await bump_shipments(cur)
    return out


async def _store(cur: AsyncCursor[Any], shipment_id: str, provider: str,
                 cp: Checkpoint) -> bool:
    await cur.execute(carrier_sql.STORE_CHECKPOINT, {
        "shipment_id": shipment_id, "provider": provider, "key": cp.key, "ts": cp.ts,
        "status": cp.status, "detail": cp.detail, "message": cp.message,
        "location": cp.location,
        "mapped": Jsonb({"status": cp.meaning.status, "code": cp.meaning.code})})
    return await cur.fetchone() is not None


def _data(update: CarrierUpdate, cp: Checkpoint) -> dict[str, Any]:
    data = {"provider": update.provider, "carrier": update.carrier,
            "carrier_status": cp.status, "carrier_detail": cp.detail, "message": cp.message,
            "location": cp.location}
    return {k: v for k, v in data.items() if v is not None}


async def _act(cur: AsyncCursor[Any], ship: dict[str, Any], update: CarrierUpdate,
               cp: Checkpoint) -> list[Event]:
    events: list[Event] = []
    meaning, data = cp.meaning, _data(update, cp)
    ts = cp.ts
    if ts < ship["created"]:  # created comes first: dated at it, its own time in the data
        ts, data["carrier_ts"] = ship["created"], cp.ts.isoformat()
    if meaning.status is not None:
        event = await record_milestone(cur, ship, meaning.status, ts, CARRIER, data)
        if event is not None:
            events.append(event)
    common = {"device_id": ship["device_id"], "shipment_id": ship["id"],
              "discriminator": f"{update.provider}:{cp.key}"}
    if meaning.code is not None:
        reason = cp.message or meaning.words or meaning.code
        await cur.execute(q.OPEN_EXCEPTION, {"shipment_id": ship["id"], "kind": KIND,
                                             "since": ts, "reason": reason,
                                             "data": Jsonb(data), "code": meaning.code})
        events.append(make_event(SHIPMENT_EXCEPTION, ts, data={
            "kind": KIND, "code": meaning.code, "reason": reason, "source": CARRIER, **data},
            **common))
    elif meaning.status is not None:
        async with cur.connection.cursor(row_factory=dict_row) as plain:
            await plain.execute(carrier_sql.CLEAR_EXCEPTION, (ship["id"], KIND))
            cleared = await plain.fetchall()
        if cleared:
            events.append(make_event(SHIPMENT_EXCEPTION_CLEARED, ts, data={
                "cleared": [dict(r) for r in cleared], "source": CARRIER, **data}, **common))
    return events
