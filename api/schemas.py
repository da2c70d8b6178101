"""Response models: they make ``/openapi.json`` describe what the API answers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from pydantic import AnyHttpUrl, AwareDatetime, BaseModel, Field, create_model

from shiptrack.fix import SHOWN_FIELDS, UNITS, Fix


def fields_of(struct: type[msgspec.Struct], names: Iterable[str], *, required: bool = False,
              docs: Mapping[str, str] | None = None) -> dict[str, Any]:
    """pydantic field definitions of these fields of a domain struct (its one
    definition): its types; required as there (or all of them), the others default to
    None; ``docs``: descriptions."""
    wanted = list(names)
    found = {f.name: f for f in msgspec.structs.fields(struct)}
    out: dict[str, Any] = {}
    for name in wanted:
        f = found[name]
        doc = (docs or {}).get(name)
        out[name] = (f.type, Field(... if required or f.required else None, description=doc))
    return out


# A position as the API shows it: the fields of shiptrack.fix.Fix that a position shows.
_Position: Any = create_model("Position", **fields_of(
    Fix, [n for n in SHOWN_FIELDS if n != "device_id"], docs=UNITS))


class Position(_Position):  # type: ignore[misc]
    pass


class Device(BaseModel):
    device_id: str
    first_seen_at: datetime
    last_seen_at: datetime | None = Field(None, description="when ingest last received a fix")
    last_position: Position | None = None
    attrs: dict[str, Any] | None = None

    model_config = {"json_schema_extra": {"examples": [{
        "device_id": "truck-17", "first_seen_at": "2026-11-26T08:00:00Z",
        "last_seen_at": "2026-11-26T10:00:01Z",
        "last_position": {"ts": "2026-11-26T10:00:00.250Z", "lat": 52.52, "lon": 13.405,
                          "speed": 12.5, "heading": 270.0},
    }]}}


class DeviceList(BaseModel):
    items: list[Device]
    next_cursor: str | None = Field(description="pass back as cursor=; null: last page")

    model_config = {"json_schema_extra": {"examples": [{
        "items": [{"device_id": "truck-17", "first_seen_at": "2026-11-26T08:00:00Z",
                   "last_seen_at": "2026-11-26T10:00:01Z",
                   "last_position": {"ts": "2026-11-26T10:00:00.250Z", "lat": 52.52,
                                     "lon": 13.405, "speed": 12.5, "heading": 270.0}}],
        "next_cursor": "WyJ0cnVjay0xNyJd"}]}}


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


class TrackPoint(BaseModel):
    ts: datetime
    lat: float
    lon: float
    speed: float | None = Field(None, description="m/s")
    heading: float | None = Field(None, description="degrees from north")


class DeviceTrack(BaseModel):
    """A device's history between ``from`` and ``to``, at most ``max_points`` points: when
    there are more fixes, the span is cut into ``max_points`` equal time buckets and the
    last fix of each bucket is kept (GPS outliers are left out)."""

    device_id: str
    from_: datetime = Field(alias="from")
    to: datetime
    max_points: int
    downsampled: bool = Field(description="true when fixes were bucketed")
    items: list[TrackPoint]
    next_cursor: str | None = Field(None, description="always null: one page")

    model_config = {"populate_by_name": True, "json_schema_extra": {"examples": [{
        "device_id": "truck-17", "from": "2026-11-25T10:00:00Z", "to": "2026-11-26T10:00:00Z",
        "max_points": 1000, "downsampled": True, "next_cursor": None,
        "items": [{"ts": "2026-11-25T10:00:41Z", "lat": 52.52, "lon": 13.405, "speed": 12.5,
                   "heading": 270.0}],
    }]}}


Scope = Literal["read", "write", "admin", "webhooks"]
NAME_PATTERN = r"^[^\x00-\x1f\x7f]{1,100}$"


class TokenCreate(BaseModel):
    name: str = Field(pattern=NAME_PATTERN, description="what the token is for")
    scopes: list[Scope] = Field(
        default=["read"], min_length=1, max_length=3,
        description="read < write < admin: each implies the ones before it; webhooks: "
        "the webhook routes only (admin implies it)")
    expires_at: AwareDatetime | None = Field(None, description="RFC 3339; none: never")

    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [
        {"name": "warehouse integration", "scopes": ["write"]}]}}


class Token(BaseModel):
    id: str
    name: str
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None

    model_config = {"json_schema_extra": {"examples": [{
        "id": "tok_5f2b9c0e7a1d4e3f", "name": "warehouse integration",
        "scopes": ["read", "write"], "created_at": "2026-11-26T10:00:00Z",
        "expires_at": None, "last_used_at": "2026-11-26T10:05:00Z"}]}}


class TokenCreated(Token):
    token: str = Field(description="the bearer token: shown only in this answer")

    model_config = {"json_schema_extra": {"examples": [{
        "id": "tok_5f2b9c0e7a1d4e3f", "name": "warehouse integration",
        "scopes": ["read", "write"], "created_at": "2026-11-26T10:00:00Z",
        "expires_at": None, "last_used_at": None,
        "token": "st_bm90LWEtcmVhbC10b2tlbi1qdXN0LWFuLWV4YW1wbGU"}]}}


class TokenList(BaseModel):
    items: list[Token]
    next_cursor: str | None

    model_config = {"json_schema_extra": {"examples": [{
        "items": [{"id": "tok_5f2b9c0e7a1d4e3f", "name": "warehouse integration",
                   "scopes": ["read", "write"], "created_at": "2026-11-26T10:00:00Z",
                   "expires_at": None, "last_used_at": None}],
        "next_cursor": None}]}}


EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$"


class WebhookCreate(BaseModel):
    url: AnyHttpUrl = Field(description="http(s) URL that receives the POSTs")
    event_types: list[Annotated[str, Field(pattern=EVENT_TYPE_PATTERN, max_length=64)]] = Field(
        default=[], max_length=50, description="event types to send; empty: all")
    description: str | None = Field(None, pattern=NAME_PATTERN)

    model_config = {"extra": "forbid", "json_schema_extra": {"examples": [{
        "url": "https://example.com/hooks/shiptrack",
        "event_types": ["shipment.milestone", "shipment.at_risk"],
        "description": "ERP"}]}}


class Webhook(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str | None = None
    created_at: datetime

    model_config = {"json_schema_extra": {"examples": [{
        "id": "wh_9a8b7c6d5e4f3a2b", "url": "https://example.com/hooks/shiptrack",
        "event_types": ["shipment.milestone"], "description": "ERP",
        "created_at": "2026-11-26T10:00:00Z"}]}}


class WebhookCreated(Webhook):
    secret: str = Field(description="signing secret (whsec_ + base64): shown only here")

    model_config = {"json_schema_extra": {"examples": [{
        "id": "wh_9a8b7c6d5e4f3a2b", "url": "https://example.com/hooks/shiptrack",
        "event_types": ["shipment.milestone"], "description": "ERP",
        "created_at": "2026-11-26T10:00:00Z",
        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]}}


class WebhookList(BaseModel):
    items: list[Webhook]
    next_cursor: str | None

    model_config = {"json_schema_extra": {"examples": [{
        "items": [{"id": "wh_9a8b7c6d5e4f3a2b", "url": "https://example.com/hooks/shiptrack",
                   "event_types": [], "description": None,
                   "created_at": "2026-11-26T10:00:00Z"}],
        "next_cursor": None}]}}


class Milestone(BaseModel):
    ts: datetime
    kind: str
    source: str


class Place(BaseModel):
    lat: float
    lon: float


class TrackedShipment(BaseModel):
    """What a tracking token shows: this shipment only. ``last_position`` only while the
    shipment is under way (picked up, not yet delivered)."""

    id: str
    reference: str
    status: str = Field(description="created, picked_up, in_transit, out_for_delivery, "
                        "delivered, attempt_failed, available_for_pickup, "
                        "returned_to_sender, cancelled")
    exception: bool = Field(False, description="true while an exception is open")
    exception_reason: str | None = Field(None, description="the open exceptions' reasons")
    exception_code: str | None = Field(None, description="the latest open exception's code")
    carrier: str | None = Field(None, description="the parcel carrier, when there is one")
    carrier_tracking_number: str | None = None
    carrier_eta: datetime | None = Field(
        None, description="the carrier's own estimated delivery, beside our eta")
    milestones: list[Milestone]
    eta: datetime | None = None
    eta_low: datetime | None = None
    eta_high: datetime | None = None
    remaining_m: float | None = None
    at_risk: bool = False
    late_probability: float | None = Field(
        None, ge=0.0, le=1.0, description="the chance of arriving after promised_by")
    eta_first: datetime | None = Field(None, description="the first ETA announced")
    promised_by: datetime | None = None
    delivered_at: datetime | None = None
    origin: Place | None = None
    destination: Place | None = None
    last_position: TrackPoint | None = None

    model_config = {"json_schema_extra": {"examples": [{
        "id": "shp_01JDX2W5X1", "reference": "ORD-1042", "status": "in_transit",
        "exception": False, "exception_reason": None, "at_risk": False,
        "promised_by": "2026-11-26T16:00:00Z",
        "milestones": [{"ts": "2026-11-26T08:00:00Z", "kind": "created", "source": "manual"},
                       {"ts": "2026-11-26T09:12:00Z", "kind": "picked_up",
                        "source": "geofence"}],
        "eta": "2026-11-26T14:40:00Z", "eta_low": "2026-11-26T14:20:00Z",
        "eta_high": "2026-11-26T15:05:00Z", "remaining_m": 182000.0,
        "origin": {"lat": 52.52, "lon": 13.405}, "destination": {"lat": 48.137, "lon": 11.575},
        "last_position": {"ts": "2026-11-26T10:00:00Z", "lat": 51.34, "lon": 12.37,
                          "speed": 24.0, "heading": 190.0},
    }]}}
