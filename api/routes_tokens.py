"""``/api/v1/tokens``: API tokens made, listed and revoked by an admin (additive to the
SPEC). The token itself is in the answer to the POST only; the database keeps its
SHA-256."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from psycopg.rows import dict_row

from api.auth import AdminOnly, digest, expand_scopes, new_token
from api.errors import ApiError, error_responses
from api.pagination import id_page
from api.schemas import Token, TokenCreate, TokenCreated, TokenList
from shiptrack.db.queries import tokens as token_sql

router = APIRouter(prefix="/api/v1", tags=["tokens"])
TokenId = Annotated[str, Path(pattern=r"^tok_[0-9a-f]{16}$", examples=["tok_5f2b9c0e7a1d4e3f"])]


@router.post("/tokens", status_code=201, response_model=TokenCreated,
             summary="Create an API token (shown once)", responses=error_responses(422))
async def create_token(request: Request, _: AdminOnly, body: TokenCreate) -> TokenCreated:
    token, token_id = new_token(), f"tok_{secrets.token_hex(8)}"
    async with request.app.state.pool.connection() as conn, \
            conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            token_sql.INSERT,
            (token_id, body.name, digest(token), expand_scopes(list(body.scopes)),
             body.expires_at),
        )
        row: dict[str, Any] | None = await cur.fetchone()
    assert row is not None
    return TokenCreated(**row, token=token)


@router.get("/tokens", response_model=TokenList, summary="API tokens (not revoked)")
async def list_tokens(
    request: Request, _: AdminOnly,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> TokenList:
    rows, next_cursor = await id_page(
        request.app.state.pool, token_sql.SELECT_LIVE, cursor, limit)
    return TokenList(items=[Token(**r) for r in rows], next_cursor=next_cursor)


@router.delete("/tokens/{token_id}", status_code=204, response_class=Response,
               summary="Revoke an API token", responses=error_responses(404))
async def revoke_token(request: Request, _: AdminOnly, token_id: TokenId) -> Response:
    async with request.app.state.pool.connection() as conn:
        cur = await conn.execute(token_sql.REVOKE, (token_id,))
    if cur.rowcount == 0:
        raise ApiError(404, f"no token {token_id!r}")
    return Response(status_code=204)
