"""``/api/v1/webhooks``: Standard Webhooks endpoints (SPEC). The signing secret is in the
answer to the POST only. Needs the ``webhooks`` scope (or ``admin``): webhooks carry
secrets and send data out. Deliveries: ``api/webhooks.py``; allowed targets:
``api/webhook_targets.py``."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from psycopg.rows import dict_row

from api.auth import WebhooksScope
from api.errors import ApiError, error_responses
from api.pagination import id_page
from api.schemas import Webhook, WebhookCreate, WebhookCreated, WebhookList
from api.webhook_targets import refusal
from api.webhooks import new_secret
from shiptrack.db.queries import webhooks as webhook_sql

router = APIRouter(prefix="/api/v1", tags=["webhooks"])
WebhookId = Annotated[str, Path(pattern=r"^wh_[0-9a-f]{16}$", examples=["wh_9a8b7c6d5e4f3a2b"])]
MAX_URL = 2000


@router.post("/webhooks", status_code=201, response_model=WebhookCreated,
             summary="Register a webhook (its secret is shown once)",
             responses=error_responses(422))
async def create_webhook(request: Request, _: WebhooksScope,
                         body: WebhookCreate) -> WebhookCreated:
    url = str(body.url)
    if len(url) > MAX_URL or "\x00" in url:
        raise ApiError(422, f"url: at most {MAX_URL} characters")
    if not request.app.state.settings.webhook_allow_private:
        reason = await refusal(url)
        if reason:
            raise ApiError(422, reason, "private_address")
    hook_id, secret = f"wh_{secrets.token_hex(8)}", new_secret()
    async with request.app.state.pool.connection() as conn, \
            conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(webhook_sql.EVENTS_PRESENT)
        present = bool((await cur.fetchone() or {}).get("present"))
        await cur.execute(
            webhook_sql.insert(present),
            (hook_id, url, sorted(set(body.event_types)), body.description, secret))
        row: dict[str, Any] | None = await cur.fetchone()
    assert row is not None
    return WebhookCreated(**row, secret=secret)


@router.get("/webhooks", response_model=WebhookList, summary="Registered webhooks")
async def list_webhooks(
    request: Request, _: WebhooksScope,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> WebhookList:
    rows, next_cursor = await id_page(
        request.app.state.pool, webhook_sql.SELECT_LIVE, cursor, limit)
    return WebhookList(items=[Webhook(**r) for r in rows], next_cursor=next_cursor)


@router.delete("/webhooks/{webhook_id}", status_code=204, response_class=Response,
               summary="Delete a webhook (pending deliveries are dropped)",
               responses=error_responses(404))
async def delete_webhook(request: Request, _: WebhooksScope, webhook_id: WebhookId) -> Response:
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute(webhook_sql.DELETE, (webhook_id,))
    if cur.rowcount == 0:
        raise ApiError(404, f"no webhook {webhook_id!r}")
    return Response(status_code=204)
