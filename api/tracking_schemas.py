"""Request and response models of geofences, shipments, events and scans: they make
``/openapi.json`` describe these routes. Validation of geometry, places and sensor limits
is in ``shiptrack.geofences`` / ``shiptrack.shipments`` (one set of rules for every door),
so most inputs are typed loosely here and checked there, with messages that say what is
wrong."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, create_model

from api.schemas import fields_of
from shiptrack.events import EVENT_FIELDS, Event

# the same lists as shiptrack.shipments.STATUSES / EXCEPTION_CODES (checked by a test)
Status = Literal["created", "picked_up", "in_transit", "out_for_delivery", "delivered",
                 "attempt_failed", "available_for_pickup", "returned_to_sender", "cancelled"]
ExceptionCode = Literal["delayed", "lost", "damaged", "address_issue", "refused", "customs_hold",
                        "weather", "sensor_excursion", "offline", "route_deviation",
                        "long_stop", "other"]
CARRIER = r"^[a-z0-9_-]{1,40}$"
TRACKING_NUMBER = r"^[A-Za-z0-9._-]{1,64}$"
DEVICE_ID = r"^[A-Za-z0-9_.:-]{1,64}$"

FEATURE_EXAMPLE = {
    "type": "Feature",
    "geometry": {"type": "Point", "coordinates": [13.405, 52.52]},
    "properties": {"name": "Berlin hub", "radius_m": 500},
}


class Geofence(BaseModel):
    """A stored geofence: the GeoJSON Feature as given, with its id and times."""

    type: Literal["Feature"] = "Feature"
    id: str
    geometry: dict[str, Any]
    properties: dict[str, Any]
    kind: Literal["polygon", "circle", "corridor"]
    created_at: datetime
    updated_at: datetime


class GeofenceList(BaseModel):
    items: list[Geofence]
    next_cursor: str | None


class ShipmentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "reference": "PO-2026-0042", "device_id": "truck-17",
        "origin": {"lat": 52.52, "lon": 13.405, "radius_m": 300},
        "destination": {"geofence_id": "gf_01JDX4M2QZ8T5R3W9K6N1B7C0A"},
        "promised_by": "2026-11-27T16:00:00Z",
        "sensor_limits": {"temperature_c": {"min": 2, "max": 8, "for_s": 600},
                          "shock_g": {"max": 4}},
    }]})

    reference: str = Field(min_length=1, max_length=200)
    device_id: str | None = Field(None, pattern=DEVICE_ID,
                                  description="the tracker; optional with a carrier")
    origin: dict[str, Any] | None = Field(
        None, description="{lat, lon, radius_m?} or {geofence_id}; optional with a carrier")
    destination: dict[str, Any] = Field(description="{lat, lon, radius_m?} or {geofence_id}")
    promised_by: AwareDatetime | None = None
    created_at: AwareDatetime | None = Field(
        None, description="when the shipment was really created (RFC 3339, not in the "
        "future): the time of its `created` milestone; default now. Fixes and scans older "
        "than it make no milestone")
    route: dict[str, Any] | None = Field(None, description="GeoJSON LineString")
    route_corridor_m: float | None = Field(None, gt=0, le=100_000,
                                           description="route deviation corridor half-width")
    sensor_limits: dict[str, Any] | None = Field(
        None, description='{"<sensor>": {"min"?, "max"?, "for_s"?}}')
    carrier: str | None = Field(None, pattern=CARRIER,
                                description="parcel carrier: dhl, ups, usps, fedex, ...")
    carrier_tracking_number: str | None = Field(None, pattern=TRACKING_NUMBER)
    subscriptions: list[dict[str, Any]] | None = Field(
        None, description="consignee notifications, as POST .../subscriptions takes them")


class ShipmentPatch(BaseModel):
    """Only the fields given change (``null`` clears a field that may be empty)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "delivered"}, {"exception": False},
        {"exception": True, "exception_reason": "customer refused delivery"},
    ]})

    status: Status | None = Field(None, description="an allowed transition (docs/CARRIERS.md),"
                                                    " recorded with source 'api'")
    promised_by: AwareDatetime | None = None
    route: dict[str, Any] | None = None
    route_corridor_m: float | None = Field(None, gt=0, le=100_000)
    sensor_limits: dict[str, Any] | None = None
    exception: bool | None = Field(
        None, description="false: clear every open exception; true: raise a manual one")
    exception_reason: str | None = Field(None, min_length=1, max_length=500)
    exception_code: ExceptionCode | None = Field(
        None, description="the code of the exception raised (default other)")
    carrier: str | None = Field(None, pattern=CARRIER, description="set for a carrier leg")
    carrier_tracking_number: str | None = Field(None, pattern=TRACKING_NUMBER)


class Milestone(BaseModel):
    ts: datetime
    kind: str
    source: str
    data: dict[str, Any] = {}


class OpenException(BaseModel):
    kind: str = Field(description="device.offline, sensor.excursion:<sensor>, route.deviation,"
                                  " device.long_stop, eta.at_risk, scan:<code>, carrier,"
                                  " manual")
    code: ExceptionCode = "other"
    reason: str
    since: datetime
    data: dict[str, Any] = {}


class LastPosition(BaseModel):
    ts: datetime
    lat: float
    lon: float
    speed: float | None = None
    heading: float | None = None


class Shipment(BaseModel):
    id: str
    reference: str
    device_id: str | None
    status: Status
    tracking_token: str | None = Field(
        None, description="made from the id with the server's key; the database keeps its "
        "SHA-256 only. null for a token issued before the key (its link still works)")
    tracking_url: str | None = Field(None, description="as tracking_token")
    origin: dict[str, Any] | None
    destination: dict[str, Any]
    promised_by: datetime | None
    route: dict[str, Any] | None
    route_corridor_m: float | None
    sensor_limits: dict[str, Any]
    milestones: list[Milestone]
    eta: datetime | None
    eta_low: datetime | None
    eta_high: datetime | None
    remaining_m: float | None
    at_risk: bool
    late_probability: float | None = Field(
        None, ge=0.0, le=1.0, description="the chance of arriving after promised_by "
        "(at_risk when it reaches SHIPTRACK_AT_RISK_PROBABILITY)")
    eta_first: datetime | None = Field(
        None, description="the first ETA announced, kept beside the latest (eta)")
    last_position: LastPosition | None
    exception: bool = Field(description="an exception is open")
    exception_reason: str | None = Field(description="what is wrong, when exception is true")
    exception_code: ExceptionCode | None = Field(
        None, description="the code of the latest open exception")
    exceptions: list[OpenException] = Field(description="every open exception")
    carrier: str | None = None
    carrier_tracking_number: str | None = None
    carrier_eta: datetime | None = Field(None, description="the carrier's estimated delivery")
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime
    subscriptions: list[Any] | None = Field(
        None, description="in the answer to a POST that gave subscriptions: them, with a "
                          "webhook channel's secret (GET .../subscriptions lists them)")


class ShipmentList(BaseModel):
    items: list[Shipment]
    next_cursor: str | None


# An event as the API lists it: every field of shiptrack.events.Event (its one shape),
# and when it was stored.
_EventOut: Any = create_model(
    "EventOut", __config__=ConfigDict(json_schema_extra={"examples": [{
        "id": "evt_01JDX4M2QZ8T5R3W9K6N1B7C0A", "type": "geofence.enter",
        "ts": "2026-11-26T10:00:00Z", "device_id": "truck-17", "shipment_id": None,
        "geofence_id": "gf_01JDX4M2QZ8T5R3W9K6N1B7C0B",
        "data": {"name": "Berlin hub", "lat": 52.52, "lon": 13.405},
        "created_at": "2026-11-26T10:00:01Z"}]}),
    **fields_of(Event, EVENT_FIELDS, required=True), created_at=(datetime, ...))


class EventOut(_EventOut):  # type: ignore[misc]
    pass


class EventList(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


class ScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "scanner_id": "hub-berlin-3", "ts": "2026-11-26T10:00:00Z",
        "shipment_ref": "PO-2026-0042", "kind": "hub", "lat": 52.52, "lon": 13.405}]})

    scanner_id: str = Field(pattern=DEVICE_ID)
    ts: Any = Field(description="RFC 3339, or epoch seconds/milliseconds")
    shipment_ref: str = Field(min_length=1, max_length=200)
    kind: Literal["pickup", "hub", "delivery", "out_for_delivery", "attempt_failed",
                  "available_for_pickup", "returned", "damaged", "lost"]
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


class ScanResult(BaseModel):
    shipment_id: str
    status: Status
    recorded: list[Milestone] = Field(description="milestones this scan added (none: late or"
                                                  " duplicate)")
