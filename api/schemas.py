"""Response models: they make ``/openapi.json`` describe what the API answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Position(BaseModel):
    ts: datetime
    lat: float
    lon: float
    speed: float | None = Field(None, description="m/s")
    heading: float | None = Field(None, description="degrees from north")
    accuracy: float | None = Field(None, description="metres")
    alt: float | None = Field(None, description="metres")
    battery: float | None = Field(None, description="0..1")
    sensors: dict[str, Any] | None = None


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
    next_cursor: str | None


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}
