"""Events: what happened to a device or a shipment, and their ids.

An event id is ``evt_`` + 26 characters: 48 bits of the event's time in milliseconds and
80 bits derived from what the event is about (its type, time, device, shipment, fence and
a discriminator), in Crockford base32. So ids sort by event time, and the same event
computed twice (a replay after a crash, two processes sweeping) gets the same id and is
stored once. Other records use ``new_id``: the same layout with 80 random bits.

The JSON of an event (stored in ``events``, published on ``shiptrack/v1/live/events``,
later delivered by webhooks) is
``{"id", "type", "ts", "device_id", "shipment_id", "geofence_id", "data"}``: the fields of
``Event``, its one definition (``EVENT_FIELDS``: the columns ``INSERT_EVENTS`` writes, the
API's ``EventOut``), encoded by ``encode_events`` alone.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import msgspec

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

GEOFENCE_ENTER = "geofence.enter"
GEOFENCE_EXIT = "geofence.exit"
GEOFENCE_DWELL = "geofence.dwell"
SHIPMENT_MILESTONE = "shipment.milestone"
SHIPMENT_EXCEPTION = "shipment.exception"
SHIPMENT_EXCEPTION_CLEARED = "shipment.exception_cleared"
DEVICE_OFFLINE = "device.offline"
DEVICE_ONLINE = "device.online"
LONG_STOP = "device.long_stop"
LONG_STOP_RESOLVED = "device.long_stop_resolved"
SENSOR_EXCURSION = "sensor.excursion"
SENSOR_EXCURSION_RESOLVED = "sensor.excursion_resolved"
ROUTE_DEVIATION = "route.deviation"
ROUTE_DEVIATION_RESOLVED = "route.deviation_resolved"

EVENT_TYPES = (
    GEOFENCE_ENTER, GEOFENCE_EXIT, GEOFENCE_DWELL, SHIPMENT_MILESTONE, SHIPMENT_EXCEPTION,
    SHIPMENT_EXCEPTION_CLEARED, DEVICE_OFFLINE, DEVICE_ONLINE, LONG_STOP, LONG_STOP_RESOLVED,
    SENSOR_EXCURSION, SENSOR_EXCURSION_RESOLVED, ROUTE_DEVIATION, ROUTE_DEVIATION_RESOLVED,
    "shipment.eta_changed", "shipment.at_risk", "shipment.at_risk_cleared",
)


class Event(msgspec.Struct, kw_only=True):
    id: str
    type: str
    ts: datetime
    device_id: str | None = None
    shipment_id: str | None = None
    geofence_id: str | None = None
    data: dict[str, Any] = msgspec.field(default_factory=dict)


EVENT_FIELDS: tuple[str, ...] = tuple(f.name for f in msgspec.structs.fields(Event))
_encoder = msgspec.json.Encoder()


def encode_events(events: Sequence[Event]) -> bytes:
    """The live-topic payload: a JSON array of events."""
    return _encoder.encode(events)


def _base32(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def sortable_id(ts: datetime, entropy: bytes) -> str:
    """26 characters: 10 of milliseconds since the epoch, 16 of 80 bits of entropy."""
    millis = max(0, int(ts.timestamp() * 1000)) & ((1 << 48) - 1)
    return _base32(millis, 10) + _base32(int.from_bytes(entropy[:10], "big"), 16)


def new_id(prefix: str, now: datetime | None = None) -> str:
    """A fresh, unguessable id that sorts by creation time: ``gf_``, ``shp_``, ..."""
    return f"{prefix}_{sortable_id(now or datetime.now(UTC), secrets.token_bytes(10))}"


def event_id(type_: str, ts: datetime, device_id: str | None, shipment_id: str | None,
             geofence_id: str | None, discriminator: str = "") -> str:
    key = "|".join((type_, ts.astimezone(UTC).isoformat(), device_id or "", shipment_id or "",
                    geofence_id or "", discriminator))
    digest = hashlib.blake2b(key.encode(), digest_size=10).digest()
    return f"evt_{sortable_id(ts, digest)}"


def make_event(
    type_: str, ts: datetime, *, device_id: str | None = None, shipment_id: str | None = None,
    geofence_id: str | None = None, data: dict[str, Any] | None = None,
    discriminator: str = "",
) -> Event:
    """An event with its content-derived id (see the module docstring)."""
    return Event(
        id=event_id(type_, ts, device_id, shipment_id, geofence_id, discriminator),
        type=type_, ts=ts, device_id=device_id, shipment_id=shipment_id,
        geofence_id=geofence_id, data=data or {},
    )
