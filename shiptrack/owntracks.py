"""OwnTracks JSON (MQTT and HTTP mode) to native fixes: one converter for both doors.

``location`` messages become fixes of device ``owntracks.{user}.{device}`` (named from
the topic by ``shiptrack.topics.route_topic``): ``tst`` (epoch seconds) to ``ts``, ``vel``
km/h to m/s, ``cog`` to heading, ``acc``/``alt`` kept, ``batt`` percent to 0..1; every
other field is kept in ``attrs``. Other ``_type``s (``lwt``, ``transition``, ``waypoint``,
...) are accepted and ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shiptrack.decode import Decoded, Invalid, decode_payload, validate_fix
from shiptrack.fix import Fix
from shiptrack.jsontree import as_float, is_number

RENAMES = {"tst": "ts", "cog": "heading", "acc": "accuracy"}
CONSUMED = frozenset(("_type", "tst", "vel", "cog", "acc", "alt", "batt", "lat", "lon"))


def to_native(obj: dict[str, Any]) -> dict[str, Any]:
    """Map one OwnTracks location object to the native payload shape."""
    native: dict[str, Any] = {k: v for k, v in obj.items() if k not in CONSUMED}
    for src, dst in RENAMES.items():
        if src in obj:
            native[dst] = obj[src]
    native["lat"] = obj.get("lat")
    native["lon"] = obj.get("lon")
    if "alt" in obj:
        native["alt"] = obj["alt"]
    vel = obj.get("vel")
    if vel is not None:  # a bad one reaches validation as it is, to be named there
        native["speed"] = as_float(vel) / 3.6 if is_number(vel) else vel
    batt = obj.get("batt")
    if batt is not None:
        native["battery"] = as_float(batt) / 100.0 if is_number(batt) else batt
    return native


def convert_owntracks(device_id: str, obj: Any, now: datetime) -> Fix | None:
    """A fix for a ``location`` object, None for any other ``_type``."""
    if not isinstance(obj, dict):
        raise Invalid("not_object", "each OwnTracks message must be a JSON object")
    if obj.get("_type") != "location":
        return None
    if "tst" not in obj:
        raise Invalid("missing_field", "tst is required in an OwnTracks location")
    return validate_fix(device_id, to_native(obj), now)


def decode_owntracks(
    device_id: str, topic: str, payload: bytes, now: datetime, max_bytes: int
) -> Decoded:
    """An OwnTracks payload (MQTT or HTTP mode): an object or an array."""
    return decode_payload(topic, payload, now, max_bytes,
                          lambda o, n: convert_owntracks(device_id, o, n))
