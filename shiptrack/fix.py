"""The domain record of one accepted position fix, and of one rejected input.

``Fix`` is the one definition of a position's fields: the column lists of ``positions``
and of a device's last position (``shiptrack.db.queries.positions``), their COPY types,
the API's ``Position`` schema and what the live streams show are derived from it.
"""

from __future__ import annotations

import types
from datetime import datetime
from typing import Any, Union, get_args, get_origin

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


# -- the field lists, derived from Fix ----------------------------------------------------------

FIELDS: tuple[msgspec.structs.FieldInfo, ...] = msgspec.structs.fields(Fix)
# every field, in order: a row of ``positions``
POSITION_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS)
# what a device's last position keeps (``devices``): not the history's own fields
LAST_POSITION_FIELDS: tuple[str, ...] = tuple(
    n for n in POSITION_FIELDS if n not in ("seq", "outlier"))
# what a position shows (live streams, the API's ``Position`` beside its device_id)
SHOWN_FIELDS: tuple[str, ...] = tuple(n for n in LAST_POSITION_FIELDS if n != "attrs")
# a point on a map or a track (a device's track, a shipment's last position, the fleet)
POINT_FIELDS: tuple[str, ...] = ("ts", "lat", "lon", "speed", "heading")
# the units of the numeric fields (SPEC), for the API's schema
UNITS = {"speed": "m/s", "heading": "degrees from north", "accuracy": "metres",
         "alt": "metres", "battery": "0..1"}

_SQL_TYPES: dict[Any, str] = {str: "text", datetime: "timestamptz", float: "float8",
                              int: "int8", bool: "bool", dict: "jsonb"}


def base_type(annotation: Any) -> Any:
    """``float | None`` -> ``float``; ``dict[str, Any]`` -> ``dict``."""
    if get_origin(annotation) in (Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    return get_origin(annotation) or annotation


def sql_type(name: str) -> str:
    """The PostgreSQL type of a field (its column in ``positions`` and ``devices``)."""
    (field,) = [f for f in FIELDS if f.name == name]
    return _SQL_TYPES[base_type(field.type)]


# fields stored as jsonb
JSON_FIELDS = frozenset(n for n in POSITION_FIELDS if sql_type(n) == "jsonb")
