"""Fan-out of live messages to WebSocket clients.

Every message is encoded once (by the live feed) and handed to each interested client as
the same ``str``. A client owns a bounded outbox: the latest position per device
(conflation: a newer position replaces the one not yet sent) and, in order, events and
ETA updates. Publishing never waits for a client: it only appends to outboxes and sets
an ``asyncio.Event``; each client's own task does the sending.

A client is closed with ``CLOSE_TOO_SLOW`` (4008) when its event queue overflows
(``queue_limit``) or when the oldest message it has not been sent yet, or the batch it is
being sent, is older than ``stall_s`` seconds (checked by ``watchdog``, once a second).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

log = logging.getLogger("shiptrack.api")
CLIENTS = Gauge("shiptrack_ws_clients", "Connected WebSocket stream clients")
CLOSED = Counter("shiptrack_ws_closed_total", "Stream clients closed by the server", ["code"])
SENT = Counter("shiptrack_ws_messages_sent_total", "Messages sent to stream clients")

CLOSE_GOING_AWAY = 1001  # server shutting down
CLOSE_TOO_SLOW = 4008  # application close code: the client fell too far behind
CLOSE_NOT_FOUND = 4404  # tracking token unknown or expired
CLOSE_TRY_AGAIN = 1013  # a server it needs is unavailable: reconnect later


@dataclass(slots=True)
class Filter:
    """What a client wants: everything, a bounding box, a set of devices, or (tracking
    streams) one shipment's events and ETAs."""

    bbox: tuple[float, float, float, float] | None = None
    devices: frozenset[str] | None = None
    shipment: str | None = None

    @property
    def everything(self) -> bool:
        return self.bbox is None and self.devices is None and self.shipment is None

    def wants(self, device_id: str, lat: float | None, lon: float | None) -> bool:
        """Whether a position of ``device_id`` at (lat, lon) is for this client."""
        if self.devices is not None and device_id not in self.devices:
            return False
        if self.bbox is not None:
            if lat is None or lon is None:
                return False
            min_lon, min_lat, max_lon, max_lat = self.bbox
            if not min_lat <= lat <= max_lat:
                return False
            if min_lon <= max_lon:
                return min_lon <= lon <= max_lon
            return lon >= min_lon or lon <= max_lon  # box across the antimeridian
        return True

    def wants_other(self, device_id: str | None, shipment_id: str | None) -> bool:
        """Whether an event or ETA update (of a device and/or shipment) is for this client."""
        if self.shipment is not None:
            return shipment_id == self.shipment
        return self.devices is None or device_id is None or device_id in self.devices


class Subscriber:
    """One stream client's outbox and state; see the module docstring."""

    __slots__ = ("behind_since", "close_code", "close_reason", "filter", "on_other",
                 "others", "positions", "queue_limit", "sender", "sending_since", "wake")

    def __init__(self, flt: Filter | None = None, queue_limit: int = 1000) -> None:
        self.filter = flt or Filter()
        self.queue_limit = queue_limit
        self.positions: dict[str, str] = {}
        self.others: deque[str] = deque()
        self.wake = asyncio.Event()
        self.behind_since: float | None = None  # when the oldest pending message came
        self.sending_since: float | None = None  # when the batch being sent was drained
        self.close_code: int | None = None
        self.close_reason = ""
        self.sender: asyncio.Task[None] | None = None  # cancelled when closed mid-send
        self.on_other: Callable[[], None] | None = None  # told of each event/ETA it gets

    def offer_position(self, device_id: str, text: str, now: float) -> None:
        positions = self.positions
        if not positions and not self.others:
            self.behind_since = now
        positions.pop(device_id, None)  # keep delivery order by recency
        positions[device_id] = text
        self.wake.set()

    def offer_other(self, text: str, now: float) -> None:
        if not self.positions and not self.others:
            self.behind_since = now
        if len(self.others) >= self.queue_limit:
            self.close(CLOSE_TOO_SLOW, "too slow: event queue overflowed")
            return
        self.others.append(text)
        self.wake.set()
        if self.on_other is not None:
            self.on_other()

    def push_front(self, text: str) -> None:
        """A message to send before everything pending (a snapshot)."""
        if not self.positions and not self.others:
            self.behind_since = time.monotonic()
        self.others.appendleft(text)
        self.wake.set()

    def drain(self) -> list[str]:
        """Everything pending, events first (they carry history), then positions."""
        out = list(self.others)
        if self.positions:
            out.extend(self.positions.values())
            self.positions.clear()
        self.others.clear()
        self.behind_since = None
        self.wake.clear()
        return out

    def stalled(self, now: float, stall_s: float) -> bool:
        oldest = self.behind_since if self.sending_since is None else self.sending_since
        return oldest is not None and now - oldest > stall_s

    def close(self, code: int, reason: str) -> None:
        """Ask the client's stream to close with ``code`` (once; the first reason wins)."""
        if self.close_code is not None:
            return
        self.close_code, self.close_reason = code, reason
        CLOSED.labels(str(code)).inc()
        self.wake.set()
        if self.sender is not None and self.sending_since is not None:
            self.sender.cancel()  # blocked in a send to a client that does not read


class Hub:
    def __init__(self, queue_limit: int = 1000, stall_s: float = 10.0) -> None:
        self.subscribers: set[Subscriber] = set()
        self.queue_limit = queue_limit
        self.stall_s = stall_s
        self.closing = False
        self.on_event: Callable[[], None] | None = None  # told of each live event

    def add(self, flt: Filter | None = None) -> Subscriber:
        sub = Subscriber(flt, self.queue_limit)
        self.subscribers.add(sub)
        CLIENTS.inc()
        if self.closing:
            sub.close(CLOSE_GOING_AWAY, "server shutting down")
        return sub

    def remove(self, sub: Subscriber) -> None:
        if sub in self.subscribers:
            self.subscribers.discard(sub)
            CLIENTS.dec()

    def publish_position(self, device_id: str, lat: float, lon: float, text: str) -> None:
        now = time.monotonic()
        for sub in self.subscribers:
            flt = sub.filter
            if flt.everything or flt.wants(device_id, lat, lon):
                sub.offer_position(device_id, text, now)

    def publish_other(self, text: str, device_id: str | None = None,
                      shipment_id: str | None = None) -> None:
        """An event or ETA message, for the clients that want its device/shipment."""
        now = time.monotonic()
        for sub in self.subscribers:
            if sub.filter.wants_other(device_id, shipment_id):
                sub.offer_other(text, now)

    def check_stalled(self, now: float | None = None) -> int:
        """Close the clients too far behind for too long; returns how many."""
        now = time.monotonic() if now is None else now
        slow = [s for s in self.subscribers
                if s.close_code is None and s.stalled(now, self.stall_s)]
        for sub in slow:
            sub.close(CLOSE_TOO_SLOW, f"too slow: behind for more than {self.stall_s:g} s")
        if slow:
            log.info("closing %d stream client(s) that fell behind", len(slow))
        return len(slow)

    async def watchdog(self) -> None:
        interval = min(1.0, self.stall_s / 4)
        while True:
            await asyncio.sleep(interval)
            self.check_stalled()

    async def close_all(self, code: int = CLOSE_GOING_AWAY,
                        reason: str = "server shutting down", wait: float = 2.0) -> None:
        """Close every client (shutdown); wait up to ``wait`` s for their streams to end."""
        self.closing = True
        for sub in list(self.subscribers):
            sub.close(code, reason)
        deadline = time.monotonic() + wait
        while self.subscribers and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)  # streams remove themselves once closed
