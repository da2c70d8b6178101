"""MQTT topics: what devices publish (SPEC) and what ingest republishes for live streams.

Live topics are an additive part of the contract (README, "Live topics"): ingest publishes
accepted fixes after they are committed, the API's WebSocket hub subscribes to them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

DEVICE_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
OWNTRACKS_PART_RE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

POSITION_FILTER = "shiptrack/v1/devices/+/position"
OWNTRACKS_FILTER = "owntracks/+/+"
SCAN_FILTER = "shiptrack/v1/scanners/+/scan"
LIVE_POSITIONS = "shiptrack/v1/live/positions"
LIVE_EVENTS = "shiptrack/v1/live/events"
LIVE_ETA = "shiptrack/v1/live/eta"

TopicKind = Literal["position", "owntracks", "scan", "unknown"]


@dataclass(frozen=True, slots=True)
class Route:
    """What a topic names: its kind and the device (or scanner) id, '' when invalid."""

    kind: TopicKind
    device_id: str
    valid: bool


def device_topic(device_id: str, prefix: str = "") -> str:
    return f"{prefix}shiptrack/v1/devices/{device_id}/position"


def is_valid_device_id(device_id: str) -> bool:
    return DEVICE_ID_RE.fullmatch(device_id) is not None


def route_topic(topic: str, prefix: str = "") -> Route:
    """Classify an incoming topic (with the deployment's prefix stripped)."""
    if prefix:
        if not topic.startswith(prefix):
            return Route("unknown", "", False)
        topic = topic[len(prefix) :]
    parts = topic.split("/")
    if len(parts) == 5 and parts[:3] == ["shiptrack", "v1", "devices"] and parts[4] == "position":
        return Route("position", parts[3], is_valid_device_id(parts[3]))
    if len(parts) == 3 and parts[0] == "owntracks":
        user, device = parts[1], parts[2]
        ok = bool(OWNTRACKS_PART_RE.fullmatch(user) and OWNTRACKS_PART_RE.fullmatch(device))
        device_id = f"owntracks.{user}.{device}"
        return Route("owntracks", device_id, ok and is_valid_device_id(device_id))
    if len(parts) == 5 and parts[:3] == ["shiptrack", "v1", "scanners"] and parts[4] == "scan":
        return Route("scan", parts[3], is_valid_device_id(parts[3]))
    return Route("unknown", "", False)
