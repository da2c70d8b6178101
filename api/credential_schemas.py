"""Models of the broker-credential endpoints (``api/routes_credentials.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic.config import JsonDict

EXAMPLE: JsonDict = {"device_id": "truck-17", "username": "device.truck-17",
           "password": "q3Vx-EXAMPLE-not-a-real-password-0", "client_id": "device.truck-17",
           "broker_url": "mqtt://broker.example.com:1883",
           "topic": "shiptrack/v1/devices/truck-17/position",
           "created_at": "2026-11-26T10:00:00Z"}


class CredentialIssued(BaseModel):
    """A broker login, shown once: the password is in this answer only."""

    username: str
    password: str = Field(description="shown only in this answer; the broker keeps a hash")
    client_id: str = Field(description="the MQTT client id this login must connect with")
    broker_url: str = Field(description="where the device connects (no credentials in it)")
    topic: str = Field(description="what this login may publish to (OwnTracks: its subtree)")
    created_at: datetime


class DeviceCredential(CredentialIssued):
    device_id: str

    model_config = {"json_schema_extra": {"examples": [EXAMPLE]}}


class ScannerCredential(CredentialIssued):
    scanner_id: str


class OwnTracksCredential(CredentialIssued):
    user: str
    owntracks: dict[str, Any] = Field(
        description="OwnTracks app settings (a `configuration` message the app imports); "
        "set deviceId per phone")


class CredentialRecord(BaseModel):
    id: str
    kind: Literal["device", "scanner", "owntracks"]
    subject: str = Field(description="device id, scanner id or OwnTracks user")
    username: str
    created_at: datetime
    revoked_at: datetime | None = None


class CredentialList(BaseModel):
    items: list[CredentialRecord]
    next_cursor: str | None
