"""OwnTracks HTTP mode: ``POST /api/v1/owntracks``.

The app's JSON (an object or an array) is handed, unchanged, to the broker on
``owntracks/{user}/{device}`` at QoS 1; ingest decodes it exactly as if the phone had
published over MQTT: one decode path for both doors. The answer is ``[]`` (no friends'
locations or commands to return) once the broker has confirmed the message.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request

from api.auth import bearer_from_header, check_credentials
from api.errors import ApiError
from api.mqtt_publisher import BrokerUnavailable
from shiptrack.decode import Invalid, load_json
from shiptrack.topics import OWNTRACKS_PART_RE

router = APIRouter(prefix="/api/v1", tags=["owntracks"])


def basic_password(value: str | None) -> str | None:
    """The password of an ``Authorization: Basic`` header: the app's way to send a token."""
    if not value:
        return None
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep and password else None


async def require_writer(request: Request) -> None:
    """A token with the 'write' scope, as a bearer token or as the Basic password."""
    header = request.headers.get("authorization")
    token = bearer_from_header(header) or basic_password(header)
    if token is None:
        raise ApiError(401, "missing token (Bearer, or HTTP Basic with the token as password)")
    principal = await check_credentials(request, token)
    if principal is None:
        raise ApiError(401, "invalid token")
    if not principal.allows("write"):
        raise ApiError(403, "this token lacks the 'write' scope")


def _identity(value: str | None, name: str) -> str:
    if not value:
        raise ApiError(400, f"missing {name}: pass ?u=&d= or the X-Limit-U/X-Limit-D headers",
                       "missing_identity")
    if not OWNTRACKS_PART_RE.fullmatch(value):
        raise ApiError(400, f"{name} must be 1-64 characters of [A-Za-z0-9_.:-]",
                       "bad_identity")
    return value


@router.post(
    "/owntracks", summary="OwnTracks HTTP mode", response_model=list[object],
    responses={400: {"description": "no or bad user/device"},
               413: {"description": "payload too large"},
               503: {"description": "broker unavailable: the app retries later"}},
)
async def owntracks(
    request: Request,
    u: Annotated[str | None, Query(description="OwnTracks user")] = None,
    d: Annotated[str | None, Query(description="OwnTracks device")] = None,
    x_limit_u: Annotated[str | None, Header()] = None,
    x_limit_d: Annotated[str | None, Header()] = None,
) -> list[object]:
    await require_writer(request)
    user = _identity(u or x_limit_u, "user")
    device = _identity(d or x_limit_d, "device")
    body = await request.body()
    settings = request.app.state.settings
    try:
        load_json(body, settings.max_payload_bytes)
    except Invalid as exc:
        status = 413 if exc.reason == "too_large" else 400
        raise ApiError(status, str(exc), exc.reason) from exc
    topic = f"{settings.mqtt_topic_prefix}owntracks/{user}/{device}"
    try:
        await request.app.state.publisher.publish(topic, body)
    except BrokerUnavailable as exc:
        raise ApiError(503, f"broker unavailable, retry later: {exc}") from exc
    return []
