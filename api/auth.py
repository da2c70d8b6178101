"""Bearer-token auth for the dispatcher/integrator API and the fleet stream.

Two kinds of bearer token:

- the admin token from the environment (``SHIPTRACK_ADMIN_TOKEN``): every scope;
- API tokens made through ``POST /api/v1/tokens``: ``st_`` + 43 url-safe characters
  (256 random bits), kept only as their SHA-256, with scopes ``read`` < ``write`` <
  ``admin`` (each implies the ones before it).

Digests are compared with ``hmac.compare_digest``. Missing or unknown token: 401; a
valid token without the scope a route needs: 403.

Dependencies for routes: ``Reader`` (scope read), ``Writer`` (write), ``AdminOnly``
(admin), and ``Admin``, kept for the routes written against it: read for safe methods
(GET, HEAD), write for the others.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from shiptrack.db.queries import tokens as token_sql

SCOPES = ("read", "write", "admin")
WEBHOOKS = "webhooks"  # webhook routes only, outside the read < write < admin chain
ALL_SCOPES = (*SCOPES, WEBHOOKS)
TOKEN_PREFIX = "st_"
LAST_USED_EVERY = timedelta(minutes=1)  # how often last_used_at is written at most

# each auth dependency -> the scope it needs (None: read for GET/HEAD, else write)
REQUIRED: dict[Callable[..., Awaitable[Principal]], str | None] = {}
_bearer = HTTPBearer(auto_error=False, description="admin token or an API token")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the admin (env token) or one API token, and its scopes."""

    kind: str  # "admin" | "token"
    scopes: frozenset[str]
    token_id: str | None = None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes  # admin: every scope


ADMIN = Principal("admin", frozenset(ALL_SCOPES))


def expand_scopes(scopes: list[str]) -> list[str]:
    """``admin`` implies ``write`` implies ``read``: the stored, expanded set (``webhooks``
    stands alone: a token with only it has no ``read``)."""
    chain = [SCOPES.index(s) for s in scopes if s in SCOPES]
    expanded = list(SCOPES[: max(chain) + 1]) if chain else []
    return [*expanded, WEBHOOKS] if WEBHOOKS in scopes and "admin" not in expanded else expanded


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def bearer_from_header(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def authenticate(app: Any, token: str | None) -> Principal | None:
    """The principal of a bearer token, or None when it is missing or not valid."""
    if not token:
        return None
    given = digest(token)
    if hmac.compare_digest(given, app.state.admin_digest):
        return ADMIN
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    try:
        async with app.state.pool.connection() as conn:
            row = await (await conn.execute(token_sql.BY_DIGEST, (given,))).fetchone()
            if row is None or not hmac.compare_digest(bytes(row[1]), given):
                return None
            now = datetime.now(UTC)
            if row[3] is not None and row[3] <= now:
                return None
            if row[4] is None or now - row[4] > LAST_USED_EVERY:
                await conn.execute(token_sql.TOUCH, (row[0],))
    except psycopg.Error as exc:
        raise ApiError(503, "token store unavailable, try again") from exc
    return Principal("token", frozenset(row[2]), row[0])


def client_key(conn: Request | WebSocket) -> str:
    return conn.client.host if conn.client else "unknown"


Lookup = Callable[[Any, str], Awaitable["Principal | None"]]


async def check_credentials(conn: Request | WebSocket, token: str,
                            lookup: Lookup | None = None) -> Principal | None:
    """``lookup`` (default ``authenticate``) behind the bad-credentials limiter: 429 while
    the client is limited, and a failure counted for every invalid credential."""
    limiter = conn.app.state.auth_limiter
    key = client_key(conn)
    wait = limiter.retry_after(key, time.monotonic())
    if wait is not None:
        raise ApiError(429, f"too many bad credentials; retry in {wait} s",
                       headers={"Retry-After": str(wait)})
    principal = await (lookup or authenticate)(conn.app, token)
    if principal is None:
        limiter.failed(key, time.monotonic())
    return principal


def require(scope: str | None) -> Callable[..., Awaitable[Principal]]:
    """A dependency: a valid bearer token with ``scope`` (None: by the method)."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        token = bearer_from_header(request.headers.get("authorization"))
        if token is None:
            raise ApiError(401, "missing bearer token (Authorization: Bearer <token>)")
        principal = await check_credentials(request, token)
        if principal is None:
            raise ApiError(401, "invalid token")
        needed = scope or ("read" if request.method in ("GET", "HEAD") else "write")
        if not principal.allows(needed):
            raise ApiError(403, f"this token lacks the {needed!r} scope")
        return principal

    REQUIRED[dependency] = scope
    return dependency


def websocket_token(ws: WebSocket) -> str | None:
    """The token of a stream client: Authorization header, else ``?token=``."""
    return bearer_from_header(ws.headers.get("authorization")) or ws.query_params.get("token")


Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("write"))]
AdminOnly = Annotated[Principal, Depends(require("admin"))]
WebhooksScope = Annotated[Principal, Depends(require(WEBHOOKS))]
Admin = Annotated[Principal, Depends(require(None))]
