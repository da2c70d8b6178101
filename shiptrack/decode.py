"""Decode and validate device payloads: pure functions, no I/O, and total.

One path for every door: MQTT position topics, OwnTracks over MQTT and OwnTracks over
HTTP all end in ``validate_fix``. Whatever the bytes hold, decoding ends in fixes and
rejections; the only exception that leaves a converter is ``Invalid`` (and
``decode_each`` turns any other into an ``internal_error`` rejection of that item).

Dead letters, at most (docs/RELIABILITY.md):

- one row for a message that is too large, not JSON (invalid UTF-8, ``NaN``,
  ``Infinity``, a number past a double or an integer past 4,300 digits), nested deeper
  than ``MAX_DEPTH``, or not an object or array;
- one row for all the items of an array that are not objects (they are not fixes);
- one row per rejected fix, for the first ``MAX_ROWS_PER_MESSAGE`` of a message, then
  one row per reason for the rest, with their ``count``.

Only a bad ``ts``, ``lat``, ``lon`` (or device id, checked from the topic) rejects a fix.
An optional field with a bad value or type is dropped, and its name listed in
``attrs._invalid`` (SPEC).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import msgspec

from shiptrack.errors import ShiptrackError
from shiptrack.fix import Fix, Rejection
from shiptrack.jsontree import (
    MAX_DEPTH,
    as_float,
    depth_exceeds,
    fits_int8,
    has_nul,
    is_number,
    short,
)

MAX_FUTURE = timedelta(minutes=5)
MIN_TS = datetime(2000, 1, 1, tzinfo=UTC)
MAX_RAW_KEPT = 4096  # bytes of a rejected payload kept in the dead-letter table
MAX_ROWS_PER_MESSAGE = 100  # rejected fixes of one message with a dead-letter row each
INVALID = "_invalid"  # the attrs key naming the optional fields that were dropped

KNOWN_NUMERIC = ("speed", "heading", "accuracy", "alt", "battery")
KNOWN_FIELDS = frozenset(("ts", "lat", "lon", "seq", "sensors", *KNOWN_NUMERIC))

_decoder = msgspec.json.Decoder()
T = TypeVar("T")


class Invalid(ShiptrackError):
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


# -- one value at a time -------------------------------------------------------------------

def parse_ts(value: Any, now: datetime) -> datetime:
    """RFC 3339 string, or epoch seconds / milliseconds as a number, to an aware UTC time."""
    if is_number(value):
        number = as_float(value)
        if not math.isfinite(number):
            raise Invalid("bad_timestamp", f"ts {short(value)} is out of range")
        seconds = number / 1000.0 if abs(number) >= 1e11 else number
        try:
            ts = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise Invalid("bad_timestamp", f"ts {short(value)} is out of range") from exc
    elif isinstance(value, str):
        try:
            ts = datetime.fromisoformat(value)
        except ValueError as exc:
            raise Invalid("bad_timestamp", f"ts {short(value)} is not RFC 3339") from exc
        if ts.tzinfo is None:
            raise Invalid("bad_timestamp", "ts has no time zone offset (RFC 3339 needs one)")
        try:
            ts = ts.astimezone(UTC)
        except OverflowError as exc:  # year 1 or 9999 shifted past the calendar's end
            raise Invalid("bad_timestamp", f"ts {short(value)} is out of range") from exc
    else:
        raise Invalid("bad_timestamp", "ts must be an RFC 3339 string or an epoch number")
    if ts > now + MAX_FUTURE:
        raise Invalid("ts_in_future", f"ts {ts.isoformat()} is more than 5 minutes ahead")
    if ts < MIN_TS:
        raise Invalid("ts_too_old", f"ts {ts.isoformat()} is before 2000-01-01")
    return ts


def required_number(obj: dict[str, Any], key: str, lo: float, hi: float) -> float:
    """A required coordinate: anything but a number within lo..hi is ``Invalid``."""
    value = obj.get(key)
    if value is None:
        raise Invalid("missing_field", f"{key} is required")
    if not is_number(value):
        raise Invalid("bad_type", f"{key} must be a number")
    number = as_float(value)
    if not lo <= number <= hi:
        raise Invalid("out_of_range", f"{key} {short(value)} is outside {lo:g}..{hi:g}")
    return number


def optional_number(value: Any, lo: float, hi: float) -> float | None:
    """An optional number within lo..hi; None when absent, ``Invalid`` when bad."""
    if value is None:
        return None
    if not is_number(value):
        raise Invalid("bad_type", "must be a number")
    number = as_float(value)
    if not lo <= number <= hi:
        raise Invalid("out_of_range", f"{short(value)} is outside {lo:g}..{hi:g}")
    return number


RANGES: dict[str, tuple[float, float]] = {
    "speed": (0.0, 1000.0),
    "heading": (0.0, 360.0),
    "accuracy": (0.0, 1e6),
    "alt": (-1e4, 1e5),
    "battery": (0.0, 1.0),
}


def field_name(key: str) -> str:
    """A field's name as listed in ``attrs._invalid`` (storable: no NUL, bounded)."""
    return key.replace("\x00", "\\u0000")[:64]


# -- one fix -------------------------------------------------------------------------------

class _Optional:
    """Collects the optional fields of one fix, dropping (and naming) the bad ones."""

    def __init__(self) -> None:
        self.invalid: list[str] = []

    def number(self, obj: dict[str, Any], key: str) -> float | None:
        value = obj.get(key)
        if value is None:
            return None
        lo, hi = RANGES[key]
        if type(value) is float and lo <= value <= hi:  # the common case, fast
            return value
        try:
            return optional_number(value, lo, hi)
        except Invalid:
            self.invalid.append(key)
            return None

    def seq(self, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool) and fits_int8(value):
            return value
        self.invalid.append("seq")
        return None

    def sensors(self, value: Any) -> dict[str, Any] | None:
        """Readings kept as sent, but none PostgreSQL or a float cannot hold."""
        if value is None:
            return None
        if not isinstance(value, dict):
            self.invalid.append("sensors")
            return None
        kept: dict[str, Any] = {}
        for key, reading in value.items():
            if "\x00" not in key and (type(reading) is float or (  # floats are finite
                    not has_nul(reading) and not depth_exceeds(reading, MAX_DEPTH)
                    and not (is_number(reading) and not math.isfinite(as_float(reading))))):
                kept[key] = reading
            else:
                self.invalid.append(f"sensors.{field_name(key)}")
        return kept if kept or not value else None

    def attrs(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Unknown fields, kept; one that cannot be stored (or the reserved
        ``_invalid``) is dropped and named."""
        kept: dict[str, Any] = {}
        for key, value in obj.items():
            if key in KNOWN_FIELDS:
                continue
            if key == INVALID or "\x00" in key or has_nul(value):
                self.invalid.append(field_name(key))
            else:
                kept[key] = value
        if self.invalid:
            kept[INVALID] = sorted(set(self.invalid))
        return kept or None


def validate_fix(device_id: str, obj: Any, now: datetime) -> Fix:
    """Check one native-format fix object; raise ``Invalid`` (a bad ts, lat or lon)."""
    if not isinstance(obj, dict):
        raise Invalid("not_object", "each fix must be a JSON object")
    if "ts" not in obj:
        raise Invalid("missing_field", "ts is required")
    ts = parse_ts(obj["ts"], now)
    lat = required_number(obj, "lat", -90.0, 90.0)
    lon = required_number(obj, "lon", -180.0, 180.0)
    opt = _Optional()
    speed, heading, accuracy, alt, battery = [opt.number(obj, k) for k in KNOWN_NUMERIC]
    seq, sensors = opt.seq(obj.get("seq")), opt.sensors(obj.get("sensors"))
    attrs = opt.attrs(obj)  # last: it lists what the others dropped
    return Fix(device_id=device_id, ts=ts, lat=lat, lon=lon, speed=speed, heading=heading,
               accuracy=accuracy, alt=alt, battery=battery, seq=seq, sensors=sensors,
               attrs=attrs)


# -- one message ---------------------------------------------------------------------------

def load_json(payload: bytes, max_bytes: int) -> Any:
    """Decode JSON or raise ``Invalid``: too large, not JSON (also invalid UTF-8, NaN,
    Infinity, numbers out of range), or nested deeper than ``MAX_DEPTH``."""
    if len(payload) > max_bytes:
        raise Invalid("too_large", f"payload of {len(payload)} bytes exceeds {max_bytes}")
    try:
        value = _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise Invalid("not_json", f"payload is not JSON: {exc}") from exc
    except RecursionError as exc:
        raise Invalid("too_deep", f"payload nests deeper than {MAX_DEPTH} levels") from exc
    # nesting needs as many brackets as levels: most payloads are cleared by counting
    if payload.count(b"[") + payload.count(b"{") > MAX_DEPTH and depth_exceeds(value):
        raise Invalid("too_deep", f"payload nests deeper than {MAX_DEPTH} levels")
    return value


def decode_each(
    items: Any, topic: str, payload: bytes, convert: Callable[[dict[str, Any]], T | None],
) -> tuple[list[tuple[T, dict[str, Any]]], list[Rejection]]:
    """Each object of an object-or-array through ``convert``: the accepted results (with
    their item) and the rejections, bounded as the module says."""
    if not isinstance(items, list | dict):
        return [], [_row("not_object", "payload must be a JSON object or array", topic,
                         payload)]
    batch: list[Any] = items if isinstance(items, list) else [items]
    accepted: list[tuple[T, dict[str, Any]]] = []
    rows: list[Rejection] = []
    more: Counter[str] = Counter()
    first: dict[str, str] = {}
    scalars = [i for i, item in enumerate(batch) if not isinstance(item, dict)]
    for item in batch:
        if not isinstance(item, dict):
            continue
        try:
            result = convert(item)
        except Invalid as exc:
            reason, detail = exc.reason, str(exc)
        except Exception as exc:  # a bug must cost this item, never the message
            reason, detail = "internal_error", f"{type(exc).__name__} while decoding"
        else:
            if result is not None:
                accepted.append((result, item))
            continue
        if len(rows) < MAX_ROWS_PER_MESSAGE:
            raw = msgspec.json.encode(item) if isinstance(items, list) else payload
            rows.append(_row(reason, detail, topic, raw))
        else:
            more[reason] += 1
            first.setdefault(reason, detail)
    for reason, count in sorted(more.items()):
        rows.append(_row(reason, f"{count} more fixes of this message were rejected like "
                         f"this: {first[reason]}", topic, payload, count))
    if scalars:
        rows.append(_row("not_object", f"{len(scalars)} of the {len(batch)} items are not "
                         f"JSON objects (the first at index {scalars[0]})", topic, payload,
                         len(scalars)))
    return accepted, rows


def _row(reason: str, detail: str, topic: str, raw: bytes, count: int = 1) -> Rejection:
    return Rejection(reason=reason, detail=detail, topic=topic, payload=raw[:MAX_RAW_KEPT],
                     count=count)


def decode_items(
    items: Any,
    topic: str,
    payload: bytes,
    now: datetime,
    convert: Callable[[Any, datetime], Fix | None],
) -> Decoded:
    """Validate an object or an array of objects, each with ``convert``."""
    accepted, rows = decode_each(items, topic, payload, lambda item: convert(item, now))
    return Decoded(fixes=[fix for fix, _ in accepted], rejections=rows)


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
