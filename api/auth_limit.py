"""429 for a client that repeats bad credentials (SPEC: HTTP API).

A client (its IP address as the server sees it) that presents more than ``limit`` bad
credentials within ``window`` seconds is answered 429 with ``Retry-After`` for every
credential it presents (good or bad) until its oldest counted failure leaves the window:
a guess that happens to be right is not let through. Per process, in memory; pure logic
with the clock passed in.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque

MAX_CLIENTS = 100_000  # memory bound: the least recently failing clients are forgotten


class FailureLimiter:
    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str, now: float) -> int | None:
        """Seconds the client must wait, or None when it may present credentials."""
        if self.limit <= 0:
            return None
        times = self._failures.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        if len(times) < self.limit:
            return None
        return max(1, math.ceil(times[0] + self.window_s - now))

    def failed(self, client: str, now: float) -> None:
        if self.limit <= 0:
            return
        times = self._failures.pop(client, None) or deque(maxlen=self.limit)
        times.append(now)
        self._failures[client] = times
        while len(self._failures) > MAX_CLIENTS:
            self._failures.popitem(last=False)
