"""Bearer-token auth for the dispatcher/integrator API and the fleet stream."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request, WebSocket

from api.errors import ApiError


def token_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison; a missing token never matches."""
    if not given:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def bearer_from_header(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def require_admin(request: Request) -> None:
    token = bearer_from_header(request.headers.get("authorization"))
    if token is None:
        raise ApiError(401, "missing bearer token (Authorization: Bearer <token>)")
    if not token_matches(token, request.app.state.admin_token):
        raise ApiError(401, "invalid token")


def websocket_token(ws: WebSocket) -> str | None:
    """The token of a stream client: Authorization header, else ``?token=``."""
    return bearer_from_header(ws.headers.get("authorization")) or ws.query_params.get("token")


Admin = Annotated[None, Depends(require_admin)]
