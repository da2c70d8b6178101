"""The domain record of one accepted position fix, and of one rejected input."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec


class Fix(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One validated position of one device. Units are SI (SPEC)."""

    device_id: str
    ts: datetime
    lat: float
    lon: float
    speed: float | None = None
    heading: float | None = None
    accuracy: float | None = None
    alt: float | None = None
    battery: float | None = None
    seq: int | None = None
    sensors: dict[str, Any] | None = None
    attrs: dict[str, Any] | None = None
    outlier: bool = False


class Rejection(msgspec.Struct, kw_only=True):
    """A piece of input that was refused, with a machine-readable reason and a message."""

    reason: str
    detail: str
    topic: str = ""
    payload: bytes = b""
    count: int = 1  # how many rejected items this one row stands for (shiptrack.decode)
