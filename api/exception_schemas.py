"""Models of the exceptions queue (``/api/v1/exceptions``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Resolution(BaseModel):
    id: str = Field(description="the resolving event's id")
    type: str
    ts: datetime


class Acknowledgement(BaseModel):
    at: datetime
    by: str = Field(description="the name given, else the token's name ('admin')")
    note: str | None = None


class Detection(BaseModel):
    type: str = Field(description="the detector's own event beside it (sensor.excursion ...)")
    data: dict[str, Any]


class ExceptionItem(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "id": "evt_01JDX4M2QZ8T5R3W9K6N1B7C0A", "type": "shipment.exception",
        "code": "sensor_excursion", "state": "acknowledged", "ts": "2026-11-26T10:00:00Z",
        "device_id": "reefer-3", "shipment_id": "shp_01JDX2W5X1", "reference": "ORD-1042",
        "data": {"kind": "sensor.excursion:temperature_c", "code": "sensor_excursion",
                 "reason": "temperature_c 9.2 outside 2..8", "source": "device"},
        "detection": {"type": "sensor.excursion",
                      "data": {"sensor": "temperature_c", "value": 9.2, "min": 2, "max": 8}},
        "resolved": None,
        "acknowledged": {"at": "2026-11-26T10:03:00Z", "by": "Ana", "note": "driver called"},
    }]}}

    id: str = Field(description="the id of the event that opened it")
    type: str
    code: str = Field(description="the SPEC exception code")
    state: str = Field(description="open, acknowledged or resolved")
    ts: datetime
    device_id: str | None
    shipment_id: str | None
    reference: str | None = Field(None, description="the shipment's reference")
    data: dict[str, Any]
    resolved: Resolution | None = None
    acknowledged: Acknowledgement | None = None
    detection: Detection | None = Field(
        None, description="for a detector's exception: its own event (sensor, value, ...)")


class ExceptionList(BaseModel):
    items: list[ExceptionItem]
    next_cursor: str | None = Field(description="pass back as cursor=; null: last page")


class AcknowledgeBody(BaseModel):
    model_config = {"extra": "forbid"}

    note: str | None = Field(None, max_length=2000, description="what was done about it")
    by: str | None = Field(None, min_length=1, max_length=100,
                           description="who (a dispatcher's name); default: the token's name")
