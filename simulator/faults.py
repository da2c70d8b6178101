"""Faults real trackers have, each switchable with a rate, recorded in the truth log.

- ``offline`` (rate per fix taken while online: an offline period starts): nothing goes
  out for ``offline_s`` seconds, then the buffered fixes and the current one as one JSON
  array, shuffled (out of order).
- ``duplicate`` (per message): the same message twice.
- ``clock_skew`` (share of devices): every ``ts`` of that device is off by a fixed
  ``skew_s``, either sign.
- ``malformed`` (per message): broken bytes instead: not JSON, truncated, a missing or
  out-of-range field, a bad ts.
- ``reboot`` (per fix due): that fix is lost and ``seq`` starts again at 1.

Every device draws from its own ``random.Random``, apart from the vehicle's, so switching
a fault on or off never changes where the trucks drive.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from simulator.truth import TruthLog, iso

MALFORMED_KINDS = ("not_json", "truncated", "missing_lat", "lat_out_of_range", "bad_ts")
Encode = Callable[[Any], bytes]


@dataclass(frozen=True, slots=True)
class FaultConfig:
    offline_rate: float = 0.0
    offline_s: tuple[float, float] = (300.0, 1800.0)
    duplicate_rate: float = 0.0
    skew_rate: float = 0.0
    skew_s: tuple[float, float] = (30.0, 900.0)
    malformed_rate: float = 0.0
    reboot_rate: float = 0.0
    buffer_limit: int = 5000

    @classmethod
    def chaos(cls) -> FaultConfig:
        """Every fault, often enough to see each in a few minutes of a small fleet."""
        return cls(offline_rate=0.002, offline_s=(120.0, 900.0), duplicate_rate=0.02,
                   skew_rate=0.2, malformed_rate=0.01, reboot_rate=0.001)


class FaultInjector:
    """The faults of one device, between its tracker and the broker."""

    def __init__(self, device_id: str, rng: random.Random, config: FaultConfig,
                 truth: TruthLog) -> None:
        self.device_id = device_id
        self.config = config
        self._rng = rng
        self._truth = truth
        skewed = rng.random() < config.skew_rate
        magnitude = rng.uniform(*config.skew_s)
        self.skew_s = (magnitude if rng.random() < 0.5 else -magnitude) if skewed else 0.0
        self._skew_recorded = False
        self._offline_since: float | None = None
        self._offline_until = 0.0
        self._buffer: list[Any] = []
        self.chances: Counter[str] = Counter()  # opportunities per fault, for its rate

    @property
    def offline(self) -> bool:
        return self._offline_since is not None

    def reboots(self, t: float) -> bool:
        """Whether the device reboots instead of taking the fix due at ``t``."""
        self.chances["reboot"] += 1
        if self.config.reboot_rate and self._rng.random() < self.config.reboot_rate:
            self._truth.add("reboot", self.device_id, t)
            return True
        return False

    def process(self, t: float, payload: Any, encode: Encode) -> list[bytes]:
        """The messages (0, 1 or 2) that leave the device for this fix."""
        if self.skew_s and not self._skew_recorded:
            self._skew_recorded = True
            self._truth.add("clock_skew", self.device_id, t, skew_s=round(self.skew_s, 1))
        batch = self._online_or_buffer(t, payload)
        if batch is None:
            return []
        message = encode(batch)
        self.chances["malformed"] += 1
        self.chances["duplicate"] += 1
        if self.config.malformed_rate and self._rng.random() < self.config.malformed_rate:
            kind = self._rng.choice(MALFORMED_KINDS)
            message = self._malform(kind, batch, message, encode)
            self._truth.add("malformed", self.device_id, t, kind=kind)
        if self.config.duplicate_rate and self._rng.random() < self.config.duplicate_rate:
            self._truth.add("duplicate", self.device_id, t)
            return [message, message]
        return [message]

    def _online_or_buffer(self, t: float, payload: Any) -> Any:
        if self._offline_since is not None:
            self._buffer.append(payload)
            del self._buffer[: -self.config.buffer_limit]
            if t < self._offline_until:
                return None
            batch, self._buffer = self._buffer, []
            self._rng.shuffle(batch)
            self._truth.add("offline", self.device_id, self._offline_since, end=iso(t),
                            duration_s=round(t - self._offline_since, 1), buffered=len(batch))
            self._offline_since = None
            return batch
        self.chances["offline"] += 1
        if self.config.offline_rate and self._rng.random() < self.config.offline_rate:
            self._offline_since = t
            self._offline_until = t + self._rng.uniform(*self.config.offline_s)
            self._buffer = [payload]
            return None
        return payload

    def _malform(self, kind: str, batch: Any, message: bytes, encode: Encode) -> bytes:
        if kind == "not_json":
            return b"\x00\x17garbage " + message[:16].hex().encode()
        if kind == "truncated":
            return message[: max(1, len(message) // 2)]
        first = dict(batch[0] if isinstance(batch, list) else batch)
        if kind == "missing_lat":
            first.pop("lat", None)
        elif kind == "lat_out_of_range":
            first["lat"] = 123.4567
        elif "ts" in first:
            first["ts"] = "yesterday at noon"
        else:
            first["tst"] = "yesterday at noon"
        return encode([first, *batch[1:]] if isinstance(batch, list) else first)
