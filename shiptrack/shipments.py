"""The shipment lifecycle: statuses in order, places, sensor limits. Pure, shared by the API
(validation) and ingest (the milestone engine).

Statuses only move forward: ``created < picked_up < in_transit < out_for_delivery <
delivered``. A milestone is a status reached (once) or a hub scan (``hub``, any number).

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
from typing import Any

STATUSES = ("created", "picked_up", "in_transit", "out_for_delivery", "delivered")
RANK = {s: i for i, s in enumerate(STATUSES)}
HUB = "hub"
SOURCES = ("geofence", "scan", "manual")
SCAN_KINDS = {"pickup": "picked_up", "hub": HUB, "delivery": "delivered"}
IN_TRANSIT = frozenset(("picked_up", "in_transit", "out_for_delivery"))

SENSOR_KEY_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
INSTANT_SENSORS = frozenset(("shock_g",))
MAX_FOR_S = 7 * 24 * 3600.0
MAX_RADIUS_M = 100_000.0


class ShipmentError(ValueError):
    """Input that is not an acceptable shipment field; the message says why."""


def rank(status: str) -> int:
    return RANK[status]


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
