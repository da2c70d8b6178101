"""The SPEC's device payload, as the simulator builds it, and its timestamp format."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple, TypedDict


class Sensors(TypedDict, total=False):
    temperature_c: float
    humidity_pct: float
    shock_g: float
    light_lux: float


class PositionPayload(TypedDict):
    """One fix as published on ``shiptrack/v1/devices/{device_id}/position`` (SPEC)."""

    ts: str
    lat: float
    lon: float
    speed: float
    heading: float
    accuracy: float
    alt: float
    battery: float
    seq: int
    sensors: Sensors


class Fix(NamedTuple):
    """A payload and the device it belongs to (the topic carries the id, not the payload)."""

    device_id: str
    payload: PositionPayload


def format_ts(moment: datetime) -> str:
    """RFC 3339 in UTC with milliseconds and ``Z``: ``2026-11-26T10:00:00.250Z``."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    utc = moment.astimezone(UTC)
    return f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z"
