"""Fan-out of live messages to WebSocket clients.

Every message is encoded once and handed to each interested client as text. A client
owns a bounded outbox: the latest position per device (conflation: a newer position
replaces the one not yet sent) and, in order, events and ETA updates. A client whose
outbox does not drain for ``stall_s`` seconds, or whose event queue overflows, is
marked for closing; publishing never waits for any client.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field

CLOSE_TOO_SLOW = 4008  # application close code: the client fell too far behind


@dataclass(slots=True)
class Filter:
    """What a client wants: everything, a bounding box, or a set of devices."""

    bbox: tuple[float, float, float, float] | None = None
    devices: frozenset[str] | None = None

    def wants(self, device_id: str, lat: float | None, lon: float | None) -> bool:
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


@dataclass(eq=False, slots=True)
class Subscriber:
    filter: Filter = field(default_factory=Filter)
    queue_limit: int = 1000
    positions: dict[str, str] = field(default_factory=dict)
    others: deque[str] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    behind_since: float | None = None
    close_reason: str | None = None

    def offer_position(self, device_id: str, text: str, now: float) -> None:
        if not self.positions and not self.others:
            self.behind_since = now
        self.positions.pop(device_id, None)  # keep delivery order by recency
        self.positions[device_id] = text
        self.wake.set()

    def offer_other(self, text: str, now: float) -> None:
        if not self.positions and not self.others:
            self.behind_since = now
        if len(self.others) >= self.queue_limit:
            self.close_reason = "too slow: event queue overflowed"
        self.others.append(text)
        self.wake.set()

    def drain(self) -> list[str]:
        """Everything pending, events first (they carry history), then positions."""
        out = list(self.others)
        out.extend(self.positions.values())
        self.others.clear()
        self.positions.clear()
        self.behind_since = None
        self.wake.clear()
        return out

    def stalled(self, now: float, stall_s: float) -> bool:
        return self.behind_since is not None and now - self.behind_since > stall_s


class Hub:
    def __init__(self, queue_limit: int = 1000, stall_s: float = 10.0) -> None:
        self.subscribers: set[Subscriber] = set()
        self.queue_limit = queue_limit
        self.stall_s = stall_s
        self.delivered = 0

    def add(self) -> Subscriber:
        sub = Subscriber(queue_limit=self.queue_limit)
        self.subscribers.add(sub)
        return sub

    def remove(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def publish_position(self, device_id: str, lat: float, lon: float, text: str) -> None:
        now = time.monotonic()
        for sub in self.subscribers:
            if sub.filter.wants(device_id, lat, lon):
                sub.offer_position(device_id, text, now)
                self._check(sub, now)

    def publish_other(self, text: str, device_id: str | None = None) -> None:
        """An event or ETA message; ``device_id`` narrows it to clients of that device."""
        now = time.monotonic()
        for sub in self.subscribers:
            if device_id is not None and sub.filter.devices is not None \
                    and device_id not in sub.filter.devices:
                continue
            sub.offer_other(text, now)
            self._check(sub, now)

    def _check(self, sub: Subscriber, now: float) -> None:
        if sub.close_reason is None and sub.stalled(now, self.stall_s):
            sub.close_reason = f"too slow: behind for more than {self.stall_s:g} s"
            sub.wake.set()
        elif sub.close_reason is not None:
            sub.wake.set()
