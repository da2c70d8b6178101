"""The shipment lifecycle: statuses and their allowed transitions, exception codes,
milestone sources, places, sensor limits. Pure, shared by the API (validation), ingest
(the milestone engine) and the carrier updates.

Statuses (SPEC): ``created -> picked_up -> in_transit -> out_for_delivery -> delivered``,
and ``attempt_failed`` / ``available_for_pickup`` (both may return to
``out_for_delivery``), ``returned_to_sender`` and ``cancelled``. ``TRANSITIONS`` is the one
definition of which status may follow which (docs/CARRIERS.md draws it, checked by a
test); every door (fixes, scans, PATCH, carriers) and the guarded SQL statement use it.
``delivered``, ``returned_to_sender`` and ``cancelled`` are final. A milestone is a status
reached or a hub scan (``hub``, any number).

Sensor limits, per shipment: ``{"<sensor key>": {"min": x, "max": y, "for_s": s}}`` where
the key is one of the fix's ``sensors`` (``temperature_c``, ``humidity_pct``,
``shock_g``, ...), at least one of ``min``/``max`` is given, and ``for_s`` is how long a
reading must stay outside before it is an excursion (default: ``shock_g`` 0, so at once;
others ``SHIPTRACK_SENSOR_EXCURSION_S``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shiptrack.errors import InputError
from shiptrack.events import SHIPMENT_MILESTONE, Event, make_event

STATUSES = ("created", "picked_up", "in_transit", "out_for_delivery", "delivered",
            "attempt_failed", "available_for_pickup", "returned_to_sender", "cancelled")
FINAL = frozenset(("delivered", "returned_to_sender", "cancelled"))
_AT_DOOR = frozenset(("attempt_failed", "available_for_pickup"))
# status -> the statuses that may follow it (skipping ahead is allowed, going back is not,
# but for the two ways back to out_for_delivery)
TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset(STATUSES) - {"created"},
    "picked_up": frozenset(("in_transit", "out_for_delivery")) | _AT_DOOR | FINAL,
    "in_transit": frozenset(("out_for_delivery",)) | _AT_DOOR | FINAL,
    "out_for_delivery": _AT_DOOR | FINAL,
    "attempt_failed": frozenset(("out_for_delivery", "available_for_pickup")) | FINAL,
    "available_for_pickup": frozenset(("out_for_delivery",)) | FINAL,
    "delivered": frozenset(), "returned_to_sender": frozenset(), "cancelled": frozenset(),
}
# how far along a status is (a hub scan before in_transit also makes it in_transit)
RANK = {"created": 0, "picked_up": 1, "in_transit": 2, "out_for_delivery": 3,
        "attempt_failed": 3, "available_for_pickup": 3, "delivered": 4,
        "returned_to_sender": 4, "cancelled": 4}
HUB = "hub"
# where a milestone came from (``milestones[].source`` and the event's ``data.source``)
DEVICE, SCAN, API, CARRIER = "device", "scan", "api", "carrier"
SOURCES = (DEVICE, SCAN, API, CARRIER)
SCAN_KINDS = {"pickup": "picked_up", "hub": HUB, "delivery": "delivered",
              "out_for_delivery": "out_for_delivery", "attempt_failed": "attempt_failed",
              "available_for_pickup": "available_for_pickup",
              "returned": "returned_to_sender", "damaged": "damaged", "lost": "lost"}
# under way: picked up and not yet at a final status (the detectors watch these)
IN_TRANSIT = frozenset(("picked_up", "in_transit", "out_for_delivery")) | _AT_DOOR

# open exceptions a final status closes (sensor excursions stay, a record for the receiver)
CLEARED_WHEN_FINAL = ("device.offline", "device.long_stop", "route.deviation", "eta.at_risk")

EXCEPTION_CODES = ("delayed", "lost", "damaged", "address_issue", "refused", "customs_hold",
                   "weather", "sensor_excursion", "offline", "route_deviation", "long_stop",
                   "other")
# scan kinds that raise an exception instead of moving the status
SCAN_EXCEPTIONS = frozenset(("damaged", "lost"))
# the exception code of each kind of open exception (``shipment_exceptions.kind``, up to
# its ``:``); kinds raised by scans, PATCH and carriers carry their own code
DETECTOR_CODES = {"device.offline": "offline", "sensor.excursion": "sensor_excursion",
                  "route.deviation": "route_deviation", "device.long_stop": "long_stop",
                  "eta.at_risk": "delayed"}

SENSOR_KEY_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
INSTANT_SENSORS = frozenset(("shock_g",))
MAX_FOR_S = 7 * 24 * 3600.0
MAX_RADIUS_M = 100_000.0


class ShipmentError(InputError):
    """Input that is not an acceptable shipment field; the message says why."""


def can_move(status: str, to: str) -> bool:
    """Whether a shipment at ``status`` may move to ``to`` (``TRANSITIONS``)."""
    return to in TRANSITIONS.get(status, frozenset())


def preceding(to: str) -> list[str]:
    """The statuses from which ``to`` may be reached (a hub scan: any but the final ones)."""
    if to == HUB:
        return [s for s in STATUSES if s not in FINAL]
    return [s for s in STATUSES if can_move(s, to)]


def transitions_mermaid() -> str:
    """``TRANSITIONS`` as a Mermaid state diagram (docs/CARRIERS.md holds this text)."""
    lines = ["stateDiagram-v2", "    [*] --> created"]
    for status in STATUSES:
        lines += [f"    {status} --> {to}" for to in STATUSES if to in TRANSITIONS[status]]
    lines += [f"    {status} --> [*]" for status in STATUSES if status in FINAL]
    return "\n".join(lines)


def detector_code(kind: str) -> str:
    """The exception code of an open exception's kind (``other`` when it names none)."""
    return DETECTOR_CODES.get(kind.split(":", 1)[0], "other")


def milestone_event(shipment_id: str, reference: str, device_id: str | None, kind: str,
                    ts: datetime, source: str, status: str,
                    data: dict[str, Any] | None = None,
                    geofence_id: str | None = None) -> Event:
    """The ``shipment.milestone`` event of a milestone recorded, whoever recorded it
    (ingest, the API, a carrier update): ``status`` is the shipment's status after it.
    Its id is derived from the kind and the scanner (a hub scan by two scanners at one
    time is two milestones), so the same milestone computed twice is stored once."""
    data = data or {}
    body = {"kind": kind, "source": source, "reference": reference, "status": status, **data}
    return make_event(SHIPMENT_MILESTONE, ts, device_id=device_id, shipment_id=shipment_id,
                      geofence_id=geofence_id, data=body,
                      discriminator=kind + str(data.get("scanner_id", "")))


@dataclass(frozen=True, slots=True)
class Place:
    """An origin or destination: a circle around a point, or a geofence."""

    lat: float | None = None
    lon: float | None = None
    radius_m: float | None = None
    geofence_id: str | None = None

    def as_json(self) -> dict[str, Any]:
        if self.geofence_id is not None:
            return {"geofence_id": self.geofence_id}
        return {"lat": self.lat, "lon": self.lon, "radius_m": self.radius_m}


def _finite(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ShipmentError(f"{what} must be a finite number")
    return float(value)


def parse_place(obj: Any, what: str, default_radius_m: float) -> Place:
    """``{lat, lon, radius_m?}`` or ``{geofence_id}``."""
    if not isinstance(obj, dict):
        raise ShipmentError(f"{what} must be an object: {{lat, lon, radius_m?}} or "
                            "{geofence_id}")
    if obj.get("geofence_id") is not None:
        fence = obj["geofence_id"]
        if not isinstance(fence, str) or not fence:
            raise ShipmentError(f"{what}.geofence_id must be a geofence id")
        if any(obj.get(k) is not None for k in ("lat", "lon", "radius_m")):
            raise ShipmentError(f"{what}: give either a geofence_id or lat/lon, not both")
        return Place(geofence_id=fence)
    if obj.get("lat") is None or obj.get("lon") is None:
        raise ShipmentError(f"{what} needs lat and lon (or a geofence_id)")
    lat, lon = _finite(obj["lat"], f"{what}.lat"), _finite(obj["lon"], f"{what}.lon")
    if not -90.0 <= lat <= 90.0:
        raise ShipmentError(f"{what}.lat {lat} is outside -90..90")
    if not -180.0 <= lon <= 180.0:
        raise ShipmentError(f"{what}.lon {lon} is outside -180..180")
    radius = obj.get("radius_m")
    radius = default_radius_m if radius is None else _finite(radius, f"{what}.radius_m")
    if not 0.0 < radius <= MAX_RADIUS_M:
        raise ShipmentError(f"{what}.radius_m must be > 0 and <= {MAX_RADIUS_M:.0f}")
    return Place(lat=lat, lon=lon, radius_m=radius)


@dataclass(frozen=True, slots=True)
class Limit:
    key: str
    min: float | None
    max: float | None
    for_s: float

    def outside(self, value: float) -> bool:
        return (self.min is not None and value < self.min) or (
            self.max is not None and value > self.max)


def parse_limits(obj: Any, default_for_s: float) -> dict[str, Limit]:
    """Validate sensor limits (module docstring); returns them by sensor key."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise ShipmentError('sensor_limits must be an object: {"temperature_c": '
                            '{"min": 2, "max": 8, "for_s": 600}, ...}')
    limits: dict[str, Limit] = {}
    for key, spec in obj.items():
        where = f"sensor_limits.{key}"
        if not SENSOR_KEY_RE.fullmatch(key):
            raise ShipmentError(f"{where}: sensor keys are 1-64 of [A-Za-z0-9_.-]")
        if not isinstance(spec, dict) or not set(spec) <= {"min", "max", "for_s"}:
            raise ShipmentError(f"{where} must be an object with min, max and/or for_s")
        lo = None if spec.get("min") is None else _finite(spec["min"], f"{where}.min")
        hi = None if spec.get("max") is None else _finite(spec["max"], f"{where}.max")
        if lo is None and hi is None:
            raise ShipmentError(f"{where} needs min or max")
        if lo is not None and hi is not None and lo > hi:
            raise ShipmentError(f"{where}: min {lo} is above max {hi}")
        default = 0.0 if key in INSTANT_SENSORS else default_for_s
        for_s = default if spec.get("for_s") is None else _finite(spec["for_s"],
                                                                  f"{where}.for_s")
        if not 0.0 <= for_s <= MAX_FOR_S:
            raise ShipmentError(f"{where}.for_s must be between 0 and {MAX_FOR_S:.0f}")
        limits[key] = Limit(key, lo, hi, for_s)
    return limits


def limits_json(limits: dict[str, Limit]) -> dict[str, Any]:
    return {k: {"min": v.min, "max": v.max, "for_s": v.for_s} for k, v in limits.items()}
