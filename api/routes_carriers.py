"""``POST /api/v1/carriers/{provider}/events`` (SPEC "Carrier updates"): a carrier's or
tracking aggregator's webhook in its own format (``easypost``, ``aftership``;
``shiptrack.carriers.updates``). No bearer token (the providers cannot send one): when
``SHIPTRACK_CARRIER_SECRET_<PROVIDER>`` is set, the provider's signature is the
credential (401 without a valid one). Matched to shipments by
``carrier_tracking_number`` and applied by ``api.carrier_apply`` (each checkpoint once);
200 with what matched, 202 when no shipment has the number (accepted and ignored).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from api.carrier_apply import apply_update
from api.errors import ApiError, error_responses
from api.tracking_io import publish_events, store_events
from shiptrack.carriers.updates import PARSERS, UpdateError, signature_ok

log = logging.getLogger("shiptrack.api")
router = APIRouter(prefix="/api/v1", tags=["carriers"])
MAX_BODY = 1024 * 1024
UNSIGNED_WARNED: set[str] = set()

Provider = Annotated[Literal["easypost", "aftership"], Path(description="whose format")]


class CarrierPushResult(BaseModel):
    tracking_number: str
    shipments: list[str] = Field(description="shipments with this carrier_tracking_number")
    new_checkpoints: int = Field(description="checkpoints not seen before (0: a repeat)")
    events: int = Field(description="events this push made (milestones, exceptions)")
    ignored: str | None = Field(None, description="why nothing applied, if so")


@router.post("/carriers/{provider}/events", response_model=CarrierPushResult,
             summary="A carrier's or aggregator's webhook, in its own format",
             responses={**error_responses(401, 413, 422),
                        202: {"model": CarrierPushResult,
                              "description": "no shipment has this tracking number"}})
async def carrier_push(request: Request, provider: Provider) -> Any:
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ApiError(413, f"a push is at most {MAX_BODY} bytes", "too_large")
    secret = request.app.state.settings.carrier_secret(provider)
    headers = {k.lower(): v for k, v in request.headers.items()}
    if secret is not None and not signature_ok(provider, secret, headers, body):
        raise ApiError(401, f"no valid {provider} signature on this push", "bad_signature")
    if secret is None and provider not in UNSIGNED_WARNED:
        UNSIGNED_WARNED.add(provider)
        log.warning("accepting unsigned %s pushes: set SHIPTRACK_CARRIER_SECRET_%s",
                    provider, provider.upper())
    try:
        update = PARSERS[provider](msgspec.json.decode(body), datetime.now(UTC))
    except msgspec.DecodeError as exc:
        raise ApiError(422, "the body is not JSON", "bad_json") from exc
    except UpdateError as exc:
        raise ApiError(422, f"not a {provider} update: {exc}", "bad_update") from exc
    async with request.app.state.pool.connection() as conn, conn.transaction(), \
            conn.cursor(row_factory=dict_row) as cur:
        applied = await apply_update(cur, update)
        stored = await store_events(cur, applied.events)
    await publish_events(request.app, stored)
    result = CarrierPushResult(tracking_number=update.tracking_number,
                               shipments=applied.shipments,
                               new_checkpoints=applied.new_checkpoints, events=len(stored),
                               ignored=update.ignored)
    if not applied.shipments:
        return JSONResponse(result.model_dump(), status_code=202)
    return result
