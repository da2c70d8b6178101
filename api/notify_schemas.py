"""Request and response models of subscriptions (SPEC "Notifications"). Fields are typed
loosely and checked by ``shiptrack.notify.subscription``, whose messages name the field."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

EXAMPLE: dict[str, Any] = {"channel": "email", "address": "anna@example.com", "language": "de",
           "timezone": "Europe/Berlin", "quiet_hours": {"start": "22:00", "end": "07:00"},
           "notify": ["picked_up", "out_for_delivery", "delivered", "delayed"]}


class SubscriptionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})

    channel: str = Field("email", description="email, sms or webhook")
    address: str = Field(max_length=2000, description="e-mail, E.164 number or https URL")
    language: str = Field("en", max_length=35, description="en, de, fr, es (a BCP 47 tag)")
    timezone: str = Field("UTC", max_length=64, description="IANA zone, e.g. Europe/Berlin")
    quiet_hours: dict[str, Any] | None = Field(
        None, description='{"start": "22:00", "end": "07:00"}')
    notify: list[str] | None = Field(None, description="occurrences; default: the SPEC's list")


class SelfSubscription(BaseModel):
    """The customer page's sign-up: e-mail only."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"address": "anna@example.com", "language": "de", "timezone": "Europe/Berlin"}]})

    address: str = Field(max_length=2000)
    language: str = Field("en", max_length=35)
    timezone: str = Field("UTC", max_length=64)
    quiet_hours: dict[str, Any] | None = None
    notify: list[str] | None = None


class Subscription(BaseModel):
    id: str
    shipment_id: str
    channel: str
    address: str
    language: str
    timezone: str
    quiet_hours: dict[str, str] | None
    notify: list[str]
    state: Literal["pending", "active", "ended", "bounced"]
    source: str
    failures: int
    last_error: str | None
    created_at: datetime
    confirmed_at: datetime | None
    ended_at: datetime | None
    ended_reason: str | None
    secret: str | None = Field(None, description="webhook channel: its signing secret, in "
                                                 "the answer to the creating POST only")


class SubscriptionList(BaseModel):
    items: list[Subscription]
    next_cursor: str | None


class SignupAccepted(BaseModel):
    status: Literal["confirmation_sent"] = "confirmation_sent"
    message: str
