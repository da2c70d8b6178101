"""Feeds the hub from the broker's live topics (what ingest republishes after commit),
so that any number of API processes can each serve stream clients."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiomqtt
import msgspec

from api.hub import Hub
from api.mqtt_publisher import broker_client
from shiptrack.mqtturl import MqttTarget
from shiptrack.topics import LIVE_ETA, LIVE_EVENTS, LIVE_POSITIONS

log = logging.getLogger("shiptrack.api")
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()

POSITION_KEYS = ("device_id", "ts", "lat", "lon", "speed", "heading", "accuracy", "alt",
                 "battery", "sensors")


def position_text(fix: dict[str, Any]) -> str:
    msg: dict[str, Any] = {"type": "position"}
    for key in POSITION_KEYS:
        if key in fix:
            msg[key] = fix[key]
    return _encoder.encode(msg).decode()


def dispatch(hub: Hub, topic: str, payload: bytes, prefix: str = "") -> int:
    """Hand one live message to the hub; returns the number of items it carried."""
    try:
        data = _decoder.decode(payload)
    except msgspec.DecodeError:
        log.warning("ignoring a live message that is not JSON on %s", topic)
        return 0
    items = data if isinstance(data, list) else [data]
    name = topic[len(prefix):] if prefix and topic.startswith(prefix) else topic
    for item in items:
        if not isinstance(item, dict):
            continue
        if name == LIVE_POSITIONS:
            device_id = item.get("device_id")
            lat, lon = item.get("lat"), item.get("lon")
            if isinstance(device_id, str) and isinstance(lat, float | int) \
                    and isinstance(lon, float | int):
                hub.publish_position(device_id, float(lat), float(lon), position_text(item))
        elif name == LIVE_EVENTS:
            # the event keeps its own "type" (geofence.enter, ...) inside "event"
            text = _encoder.encode({"type": "event", "event": item}).decode()
            hub.publish_other(text, _str(item.get("device_id")), _str(item.get("shipment_id")))
            if hub.on_event is not None:
                hub.on_event()
        elif name == LIVE_ETA:
            text = _encoder.encode({**item, "type": "eta"}).decode()
            hub.publish_other(text, _str(item.get("device_id")), _str(item.get("shipment_id")))
    return len(items)


def _str(value: Any) -> str | None:
    """Ids as strings (a shipment id may be a number or a uuid), None when absent."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class LiveFeed:
    def __init__(self, target: MqttTarget, hub: Hub, prefix: str = "") -> None:
        self.target = target
        self.hub = hub
        self.prefix = prefix
        self.connected = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        topics = [self.prefix + t for t in (LIVE_POSITIONS, LIVE_EVENTS, LIVE_ETA)]
        delay = 1.0
        while True:
            try:
                async with broker_client(self.target, "feed") as client:
                    for t in topics:
                        await client.subscribe(t, qos=0)
                    self.connected = True
                    delay = 1.0
                    log.info("live feed subscribed on %s", self.target.url)
                    async for message in client.messages:
                        payload = message.payload
                        if isinstance(payload, bytes | bytearray):
                            dispatch(self.hub, message.topic.value, bytes(payload), self.prefix)
            except aiomqtt.MqttError as exc:
                self.connected = False
                log.warning("live feed lost the broker (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
