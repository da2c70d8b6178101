"""Decode and validate device payloads: pure functions, no I/O.

One path for every door: MQTT position topics, OwnTracks over MQTT and OwnTracks over
HTTP all end in ``validate_fix``. A bad fix in a batch rejects only itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from shiptrack.fix import Fix, Rejection

MAX_FUTURE = timedelta(minutes=5)
MIN_TS = datetime(2000, 1, 1, tzinfo=UTC)
MAX_RAW_KEPT = 4096  # bytes of a rejected payload kept in the dead-letter table

KNOWN_NUMERIC = ("speed", "heading", "accuracy", "alt", "battery")
KNOWN_FIELDS = frozenset(("ts", "lat", "lon", "seq", "sensors", *KNOWN_NUMERIC))

_decoder = msgspec.json.Decoder()


class Invalid(Exception):
    """A fix failed validation: ``reason`` is the metric label, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(slots=True)
class Decoded:
    fixes: list[Fix] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def reject(self, reason: str, detail: str, topic: str, payload: bytes) -> None:
        self.rejections.append(
            Rejection(reason=reason, detail=detail, topic=topic, payload=payload[:MAX_RAW_KEPT])
        )


def parse_ts(value: Any, now: datetime) -> datetime:
    """RFC 3339 string, or epoch seconds / milliseconds as a number, to an aware UTC time."""
    if isinstance(value, bool):
        raise Invalid("bad_timestamp", "ts must be an RFC 3339 string or an epoch number")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise Invalid("bad_timestamp", "ts is not a finite number")
        seconds = value / 1000.0 if abs(value) >= 1e11 else float(value)
        try:
            ts = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise Invalid("bad_timestamp", f"ts {value!r} is out of range") from exc
    elif isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
        except ValueError as exc:
            raise Invalid("bad_timestamp", f"ts {value[:40]!r} is not RFC 3339") from exc
        if ts.tzinfo is None:
            raise Invalid("bad_timestamp", "ts has no time zone offset (RFC 3339 needs one)")
        ts = ts.astimezone(UTC)
    else:
        raise Invalid("bad_timestamp", "ts must be an RFC 3339 string or an epoch number")
    if ts > now + MAX_FUTURE:
        raise Invalid("ts_in_future", f"ts {ts.isoformat()} is more than 5 minutes ahead")
    if ts < MIN_TS:
        raise Invalid("ts_too_old", f"ts {ts.isoformat()} is before 2000-01-01")
    return ts


def _number(obj: dict[str, Any], key: str, lo: float, hi: float, required: bool) -> float | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise Invalid("missing_field", f"{key} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("bad_type", f"{key} must be a number")
    fvalue = float(value)
    if not math.isfinite(fvalue):
        raise Invalid("not_finite", f"{key} must be finite")
    if not lo <= fvalue <= hi:
        raise Invalid("out_of_range", f"{key} {fvalue} is outside {lo}..{hi}")
    return fvalue


RANGES: dict[str, tuple[float, float]] = {
    "speed": (0.0, 1000.0),
    "heading": (0.0, 360.0),
    "accuracy": (0.0, 1e6),
    "alt": (-1e4, 1e5),
    "battery": (0.0, 1.0),
}


def validate_fix(device_id: str, obj: Any, now: datetime) -> Fix:
    """Check one native-format fix object; raise ``Invalid`` with the reason."""
    if not isinstance(obj, dict):
        raise Invalid("not_object", "each fix must be a JSON object")
    if "ts" not in obj:
        raise Invalid("missing_field", "ts is required")
    ts = parse_ts(obj["ts"], now)
    lat = _number(obj, "lat", -90.0, 90.0, True)
    lon = _number(obj, "lon", -180.0, 180.0, True)
    assert lat is not None and lon is not None
    speed, heading, accuracy, alt, battery = (
        _number(obj, k, *RANGES[k], False) for k in KNOWN_NUMERIC
    )
    seq = obj.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
        raise Invalid("bad_type", "seq must be an integer")
    sensors = obj.get("sensors")
    if sensors is not None and not isinstance(sensors, dict):
        raise Invalid("bad_type", "sensors must be an object")
    attrs = {k: v for k, v in obj.items() if k not in KNOWN_FIELDS} or None
    return Fix(device_id=device_id, ts=ts, lat=lat, lon=lon, speed=speed, heading=heading,
               accuracy=accuracy, alt=alt, battery=battery, seq=seq, sensors=sensors,
               attrs=attrs)


def load_json(payload: bytes, max_bytes: int) -> Any:
    """Decode JSON or raise ``Invalid`` (too large, not JSON, NaN/Infinity)."""
    if len(payload) > max_bytes:
        raise Invalid("too_large", f"payload of {len(payload)} bytes exceeds {max_bytes}")
    try:
        return _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise Invalid("not_json", f"payload is not JSON: {exc}") from exc


def decode_items(
    items: Any,
    topic: str,
    payload: bytes,
    now: datetime,
    convert: Callable[[Any, datetime], Fix | None],
) -> Decoded:
    """Validate an object or an array of objects, each with ``convert``."""
    out = Decoded()
    batch = items if isinstance(items, list) else [items]
    if not isinstance(items, list | dict):
        out.reject("not_object", "payload must be a JSON object or array", topic, payload)
        return out
    for item in batch:
        try:
            fix = convert(item, now)
        except Invalid as exc:
            raw = msgspec.json.encode(item) if isinstance(items, list) else payload
            out.reject(exc.reason, str(exc), topic, raw)
            continue
        if fix is not None:
            out.fixes.append(fix)
    return out


def decode_payload(
    topic: str, payload: bytes, now: datetime, max_bytes: int,
    convert: Callable[[Any, datetime], Fix | None],
) -> Decoded:
    """A payload of one object or an array of them, each converted by ``convert``."""
    try:
        items = load_json(payload, max_bytes)
    except Invalid as exc:
        out = Decoded()
        out.reject(exc.reason, str(exc), topic, payload)
        return out
    return decode_items(items, topic, payload, now, convert)


def decode_position(
    device_id: str, topic: str, payload: bytes, now: datetime, max_bytes: int
) -> Decoded:
    """A native ``shiptrack/v1/devices/{id}/position`` payload: an object or an array."""
    return decode_payload(topic, payload, now, max_bytes,
                          lambda o, n: validate_fix(device_id, o, n))
