"""``POST /api/v1/ws-tickets``: a short-lived, single-use ticket for ``/ws/fleet?ticket=``
(additive to the SPEC), so that a browser never puts its bearer token in a URL.

The ticket (``wst_`` + 256 random bits) is shown once and kept as its SHA-256 with the
scopes of the token that asked for it; redeeming it deletes it (one use), and it expires
after ``SHIPTRACK_WS_TICKET_SECONDS`` (30). A ticket of an API token revoked meanwhile
opens nothing.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from api.auth import Principal, Reader, digest
from api.errors import ApiError
from shiptrack.db.queries import tokens as token_sql

router = APIRouter(prefix="/api/v1", tags=["streams"])
PREFIX = "wst_"


class WsTicket(BaseModel):
    ticket: str = Field(description="pass as /ws/fleet?ticket=; once, before expires_at")
    expires_at: datetime

    model_config = {"json_schema_extra": {"examples": [{
        "ticket": "wst_3q2-7wEXAMPLEnotAtICKETforREALuseOnlyAnExample0",
        "expires_at": "2026-11-26T10:00:30Z"}]}}


@router.post("/ws-tickets", status_code=201, response_model=WsTicket,
             summary="A single-use ticket for the fleet stream (shown once)")
async def create_ticket(request: Request, principal: Reader) -> WsTicket:
    ticket = PREFIX + secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + timedelta(seconds=request.app.state.settings.ws_ticket_seconds)
    async with request.app.state.pool.connection() as conn:
        await conn.execute(token_sql.DELETE_EXPIRED_TICKETS)
        await conn.execute(
            token_sql.INSERT_TICKET,
            (digest(ticket), sorted(principal.scopes), principal.token_id, expires))
    return WsTicket(ticket=ticket, expires_at=expires)


async def redeem(app: Any, ticket: str) -> Principal | None:
    """The principal a ticket stands for (and the ticket is gone), or None."""
    if not ticket.startswith(PREFIX) or len(ticket) > 200:
        return None
    try:
        async with app.state.pool.connection() as conn:
            row = await (await conn.execute(token_sql.REDEEM_TICKET, (digest(ticket),))).fetchone()
    except psycopg.Error as exc:
        raise ApiError(503, "ticket store unavailable, try again") from exc
    if row is None or not row[2] or not row[3]:
        return None
    kind = "admin" if row[1] is None else "token"
    return Principal(kind, frozenset(row[0]), row[1])
