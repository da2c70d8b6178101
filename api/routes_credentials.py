"""Broker credentials of devices, scanners and OwnTracks users (SPEC "Device identity"):
``POST`` issues a login (the password is in that answer only, the broker keeps a salted
hash), ``DELETE`` revokes it at once (the broker closes its open connections), ``GET
/api/v1/credentials`` lists the record (no secrets). Write scope; the broker must run
Mosquitto's dynamic-security plugin (``SHIPTRACK_MQTT_DYNSEC``), else 409.

Issuing again replaces the subject's login (the old password stops working). Per subject,
one request at a time (an advisory lock), broker first, then the record.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from api.auth import Reader, Writer
from api.broker_admin import run_commands
from api.credential_schemas import (
    CredentialList,
    CredentialRecord,
    DeviceCredential,
    OwnTracksCredential,
    ScannerCredential,
)
from api.errors import ApiError, error_responses
from api.pagination import id_page
from api.web import device_mqtt_url
from shiptrack import broker_identity as bi
from shiptrack.db.queries import credentials as credential_sql
from shiptrack.mqtturl import parse_mqtt_url

router = APIRouter(prefix="/api/v1", tags=["credentials"])
Subject = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", examples=["truck-17"])]
RESPONSES = error_responses(409, 422, 503)
def broker_url(request: Request) -> str:
    return device_mqtt_url(request.app.state.settings) or ""


async def _change(request: Request, kind: bi.Kind, subject: str,
                  commands: list[dict[str, Any]], issue_id: str | None = None) -> Any:
    """Under the subject's lock: the broker's commands, then the record: the subject's
    login revoked, and a new one recorded (``issue_id``). Returns the last cursor."""
    settings = request.app.state.settings
    if not settings.mqtt_dynsec:
        raise ApiError(409, "the broker does not manage device credentials here "
                       "(SHIPTRACK_MQTT_DYNSEC is off)", "identity_off")
    async with request.app.state.pool.connection() as conn, conn.transaction():
        await conn.execute(credential_sql.LOCK_SUBJECT, (f"{kind}/{subject}",))
        # BrokerAdminError: a 503 (api/errors.py)
        await run_commands(parse_mqtt_url(settings.mqtt_url), commands)
        cur = await conn.execute(credential_sql.REVOKE, (kind, subject))
        if issue_id is not None:
            cur = await conn.execute(credential_sql.ISSUE, (issue_id, kind, subject,
                                                 bi.username(kind, subject)))
        return cur


async def issue(request: Request, kind: bi.Kind, subject: str) -> dict[str, Any]:
    prefix = request.app.state.settings.mqtt_topic_prefix
    password, user = bi.new_password(), bi.username(kind, subject)
    cur = await _change(request, kind, subject,
                        bi.issue_commands(kind, subject, password, prefix),
                        f"cred_{secrets.token_hex(8)}")
    created: datetime = (await cur.fetchone())[0]
    topic = bi.topic_of(kind, subject, prefix)
    return {"username": user, "password": password, "client_id": user, "created_at": created,
            "broker_url": broker_url(request), "topic": topic + ("/+" if kind == "owntracks"
                                                                  else "")}


async def revoke(request: Request, kind: bi.Kind, subject: str) -> Response:
    cur = await _change(request, kind, subject, bi.revoke_commands(kind, subject))
    if cur.rowcount == 0:
        raise ApiError(404, f"no credential of {kind} {subject!r}")
    return Response(status_code=204)


def owntracks_settings(issued: dict[str, Any], user: str, prefix: str) -> dict[str, Any]:
    target = parse_mqtt_url(issued["broker_url"])
    return {"_type": "configuration", "mode": 0, "host": target.host, "port": target.port,
            "tls": target.tls, "auth": True, "username": issued["username"],
            "password": issued["password"], "clientId": issued["client_id"],
            "pubTopicBase": f"{prefix}owntracks/{user}/%d", "deviceId": "phone"}


@router.post("/devices/{device_id}/credentials", status_code=201,
             response_model=DeviceCredential, responses=RESPONSES,
             summary="Issue the device's broker login (the password is shown once)")
async def issue_device(request: Request, _: Writer, device_id: Subject) -> DeviceCredential:
    return DeviceCredential(device_id=device_id,
                            **await issue(request, "device", device_id))


@router.delete("/devices/{device_id}/credentials", status_code=204, response_class=Response,
               responses=error_responses(404, 409, 503),
               summary="Revoke the device's broker login (its connections are closed)")
async def revoke_device(request: Request, _: Writer, device_id: Subject) -> Response:
    return await revoke(request, "device", device_id)


@router.post("/scanners/{scanner_id}/credentials", status_code=201,
             response_model=ScannerCredential, responses=RESPONSES,
             summary="Issue the scanner's broker login (the password is shown once)")
async def issue_scanner(request: Request, _: Writer, scanner_id: Subject) -> ScannerCredential:
    return ScannerCredential(scanner_id=scanner_id,
                             **await issue(request, "scanner", scanner_id))


@router.delete("/scanners/{scanner_id}/credentials", status_code=204,
               response_class=Response, responses=error_responses(404, 409, 503),
               summary="Revoke the scanner's broker login (its connections are closed)")
async def revoke_scanner(request: Request, _: Writer, scanner_id: Subject) -> Response:
    return await revoke(request, "scanner", scanner_id)


@router.post("/owntracks/users/{user}/credentials", status_code=201,
             response_model=OwnTracksCredential, responses=RESPONSES,
             summary="Issue an OwnTracks user's broker login, with the app's settings")
async def issue_owntracks(request: Request, _: Writer, user: Subject) -> OwnTracksCredential:
    issued = await issue(request, "owntracks", user)
    prefix = request.app.state.settings.mqtt_topic_prefix
    return OwnTracksCredential(user=user, owntracks=owntracks_settings(issued, user, prefix),
                               **issued)


@router.delete("/owntracks/users/{user}/credentials", status_code=204,
               response_class=Response, responses=error_responses(404, 409, 503),
               summary="Revoke an OwnTracks user's broker login")
async def revoke_owntracks(request: Request, _: Writer, user: Subject) -> Response:
    return await revoke(request, "owntracks", user)


@router.get("/credentials", response_model=CredentialList,
            summary="Broker credentials issued (no passwords)")
async def list_credentials(
    request: Request, _: Reader,
    kind: Annotated[bi.Kind | None, Query()] = None,
    revoked: Annotated[bool, Query(description="include revoked ones")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> CredentialList:
    rows, next_cursor = await id_page(
        request.app.state.pool, credential_sql.listing(kind, revoked), cursor, limit)
    return CredentialList(items=[CredentialRecord(**r) for r in rows], next_cursor=next_cursor)


