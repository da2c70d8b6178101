"""The pages notifications link to: ``/n/confirm/{token}`` (a customer's sign-up) and
``/n/unsubscribe/{token}`` (every message). Each GET shows a page with a button, so mail
scanners that prefetch links change nothing; each POST does it (RFC 8058 one-click: the
mail client POSTs ``List-Unsubscribe=One-Click`` to the unsubscribe URL). Pages are in
the subscription's language; an unknown token answers a 404 page."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from psycopg.rows import dict_row

from api.subscriptions_io import drop_pending
from shiptrack.db.queries import notifications as notification_sql
from shiptrack.db.queries import subscriptions as subscription_sql
from shiptrack.notify.render import render_page
from shiptrack.notify.subscription import LANGUAGES

router = APIRouter(tags=["notifications"], include_in_schema=False)
LinkToken = Annotated[str, Path(max_length=100)]


def _page(request: Request, name: str, language: str, status: int = 200,
          **values: Any) -> HTMLResponse:
    override = request.app.state.settings.notify_templates_dir
    return HTMLResponse(render_page(name, language, values, override), status_code=status,
                        headers={"cache-control": "no-store"})


async def _find(request: Request, sql: str, key: Any) -> dict[str, Any] | None:
    async with request.app.state.pool.connection() as conn, \
            conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, (key,))
        row: dict[str, Any] | None = await cur.fetchone()
    return row


def _lang(request: Request) -> str:
    wanted = request.headers.get("accept-language", "en")[:2].lower()
    return wanted if wanted in LANGUAGES else "en"


@router.get("/n/confirm/{token}", include_in_schema=False)
async def confirm_page(request: Request, token: LinkToken) -> HTMLResponse:
    row = await _find(request, subscription_sql.BY_CONFIRM_HASH,
                      hashlib.sha256(token.encode()).digest())
    if row is None or row["state"] not in ("pending", "active"):
        return _page(request, "gone", _lang(request), 404)
    return _page(request, "confirm", row["language"], reference=row["reference"],
                 address=row["address"], done=row["state"] == "active")


@router.post("/n/confirm/{token}", include_in_schema=False)
async def confirm(request: Request, token: LinkToken) -> HTMLResponse:
    digest = hashlib.sha256(token.encode()).digest()
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await conn.execute(subscription_sql.CONFIRM, (digest,))
        await conn.execute(notification_sql.FORGET_CONFIRM_TOKEN, (digest,))
    return await confirm_page(request, token)


@router.get("/n/unsubscribe/{token}", include_in_schema=False)
async def unsubscribe_page(request: Request, token: LinkToken) -> HTMLResponse:
    row = await _find(request, subscription_sql.BY_UNSUBSCRIBE_TOKEN, token)
    if row is None:
        return _page(request, "gone", _lang(request), 404)
    return _page(request, "unsubscribe", row["language"], reference=row["reference"],
                 address=row["address"], done=row["state"] not in ("pending", "active"))


@router.post("/n/unsubscribe/{token}", include_in_schema=False)
async def unsubscribe(request: Request, token: LinkToken) -> HTMLResponse:
    """RFC 8058 one-click (``List-Unsubscribe=One-Click``), or the page's button."""
    row = await _find(request, subscription_sql.BY_UNSUBSCRIBE_TOKEN, token)
    if row is None:
        return _page(request, "gone", _lang(request), 404)
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await conn.execute(subscription_sql.UNSUBSCRIBE, (row["id"],))
        await drop_pending(conn, row["id"], "unsubscribed")
    return _page(request, "unsubscribe", row["language"], reference=row["reference"],
                 address=row["address"], done=True)
