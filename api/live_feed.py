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
from shiptrack.fix import SHOWN_FIELDS
from shiptrack.jsontree import MAX_DEPTH, depth_exceeds
from shiptrack.mqtturl import MqttTarget
from shiptrack.topics import LIVE_ETA, LIVE_EVENTS, LIVE_POSITIONS

log = logging.getLogger("shiptrack.api")
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()

def position_text(fix: dict[str, Any]) -> str:
    """A position as the streams show it: the fields a position shows (``SHOWN_FIELDS``)."""
    msg: dict[str, Any] = {"type": "position"}
    for key in SHOWN_FIELDS:
        if key in fix:
            msg[key] = fix[key]
    return _encoder.encode(msg).decode()


def dispatch(hub: Hub, topic: str, payload: bytes, prefix: str = "") -> int:
    """Hand one live message to the hub; returns the number of items it carried. Never
    raises: a message it cannot use (not JSON, too deep, odd items) is logged and
    skipped, whatever it holds (docs/RELIABILITY.md)."""
    try:
        return _dispatch(hub, topic, payload, prefix)
    except Exception as exc:
        log.warning("ignoring a live message on %s that cannot be streamed (%s: %s)",
                    topic[:200], type(exc).__name__, str(exc)[:200])
        return 0


def _dispatch(hub: Hub, topic: str, payload: bytes, prefix: str) -> int:
    try:
        data = _decoder.decode(payload)
    except msgspec.DecodeError:
        log.warning("ignoring a live message that is not JSON on %s", topic[:200])
        return 0
    if depth_exceeds(data, MAX_DEPTH):
        log.warning("ignoring a live message nested too deep on %s", topic[:200])
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
    """The task that feeds the hub. It survives any message (``dispatch`` never raises),
    reconnects when the broker goes, and is restarted if it ever ends; ``connected`` is
    False (and ``/readyz`` 503) whenever it is not subscribed."""

    def __init__(self, target: MqttTarget, hub: Hub, prefix: str = "") -> None:
        self.target = target
        self.hub = hub
        self.prefix = prefix
        self._subscribed = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.restarts = 0

    @property
    def connected(self) -> bool:
        return self._subscribed and self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="live-feed")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._subscribed = False
        if self._stopping:
            return
        error = None if task.cancelled() else task.exception()
        log.error("the live feed stopped (%s); restarting it", error or "cancelled")
        self.restarts += 1
        self.start()

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay = 1.0
        while True:
            try:
                await self._session()
                log.warning("the live feed's subscription ended; resubscribing")
            except aiomqtt.MqttError as exc:
                log.warning("live feed lost the broker (%s); retrying in %.0f s", exc, delay)
            except Exception:
                log.exception("the live feed failed; restarting in %.0f s", delay)
            finally:
                if self._subscribed:
                    delay = 1.0  # it was up: retry soon
                self._subscribed = False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _session(self) -> None:
        topics = [self.prefix + t for t in (LIVE_POSITIONS, LIVE_EVENTS, LIVE_ETA)]
        async with broker_client(self.target, "feed") as client:
            for t in topics:
                await client.subscribe(t, qos=0)
            self._subscribed = True
            log.info("live feed subscribed on %s", self.target.url)
            async for message in client.messages:
                payload = message.payload
                if isinstance(payload, bytes | bytearray):
                    dispatch(self.hub, message.topic.value, bytes(payload), self.prefix)
