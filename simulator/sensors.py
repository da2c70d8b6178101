"""Sensors on a tracker: reefer temperature with excursions, humidity, shock, light.

Pure and time-stepped like the vehicle: ``step(h, t, moving, door_open)`` advances the
physics by ``h`` seconds, ``reading()`` is what the next fix reports.

- Reefer trailers hold a band (chilled 2-8 degC, frozen -25..-15 degC) with a setpoint
  inside it. The unit fails at random (``failure_rate_per_h``) and is repaired after
  20-120 min; meanwhile the load warms towards the ambient temperature. Doors open at
  hubs let warm air in. Leaving the band and coming back is an ``excursion`` (truth).
- Shock: vibration while moving, and knocks (2.5-8 g; more often while loading at hubs),
  reported as the peak since the previous fix.
- Light: dark in a closed trailer, bright while the doors are open.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from simulator.payload import Sensors
from simulator.truth import TruthLog, iso

AMBIENT_C = 16.0
CHILLED = (2.0, 8.0, 5.0)  # low, high, setpoint
FROZEN = (-25.0, -15.0, -20.0)
COOL_TAU_S = 15 * 60.0  # a working unit pulls the load back to its setpoint
WARM_TAU_S = 90 * 60.0  # a failed unit: the load warms towards ambient
DOOR_TAU_S = 120 * 60.0  # doors open at a dock: warm air comes in
HYSTERESIS_C = 0.5  # back inside the band by this much ends an excursion
REPAIR_S = (20 * 60.0, 120 * 60.0)


@dataclass(frozen=True, slots=True)
class SensorConfig:
    reefer_share: float = 0.4
    failure_rate_per_h: float = 0.02
    knock_rate_per_h: float = 0.1
    hub_knock_rate_per_h: float = 1.0


class SensorKit:
    def __init__(self, device_id: str, rng: random.Random, config: SensorConfig,
                 truth: TruthLog) -> None:
        self.device_id = device_id
        self._rng = rng
        self._config = config
        self._truth = truth
        self.reefer = rng.random() < config.reefer_share
        low, high, setpoint = CHILLED if rng.random() < 0.7 else FROZEN
        self.band = (low, high) if self.reefer else None
        self.setpoint = setpoint + rng.uniform(-1.0, 1.0) if self.reefer else AMBIENT_C
        self.temperature_c = self.setpoint + rng.gauss(0.0, 0.3)
        self.humidity_pct = rng.uniform(80.0, 90.0) if self.reefer else rng.uniform(40.0, 60.0)
        self._humidity_mean = self.humidity_pct
        self.unit_failed_until: float | None = None
        self._excursion: dict[str, float] | None = None
        self._peak_g = 0.0
        self.door_open = False

    def step(self, h: float, t: float, moving: bool, door_open: bool) -> None:
        self.door_open = door_open
        self._temperature(h, t)
        self._humidity(h)
        self._shock(h, t, moving)

    def _temperature(self, h: float, t: float) -> None:
        if not self.reefer:
            self.temperature_c += h / 7200.0 * (AMBIENT_C - self.temperature_c)
            return
        rate_per_s = self._config.failure_rate_per_h / 3600.0
        if self.unit_failed_until is None and self._rng.random() < rate_per_s * h:
            self.unit_failed_until = t + self._rng.uniform(*REPAIR_S)
        elif self.unit_failed_until is not None and t >= self.unit_failed_until:
            self.unit_failed_until = None
        if self.door_open:
            target, tau = AMBIENT_C, DOOR_TAU_S
        elif self.unit_failed_until is not None:
            target, tau = AMBIENT_C, WARM_TAU_S
        else:
            target, tau = self.setpoint, COOL_TAU_S
        self.temperature_c += (1 - math.exp(-h / tau)) * (target - self.temperature_c)
        self.temperature_c += self._rng.gauss(0.0, 0.01 * math.sqrt(h))
        self._track_excursion(t)

    def _track_excursion(self, t: float) -> None:
        assert self.band is not None
        low, high = self.band
        temp = self.temperature_c
        outside = not low <= temp <= high
        inside = low + HYSTERESIS_C <= temp <= high - HYSTERESIS_C
        if outside and self._excursion is None:
            cause = 1.0 if self.door_open else 0.0
            self._excursion = {"start": t, "peak": self.temperature_c, "door": cause}
        elif outside and self._excursion is not None:
            peak = self._excursion["peak"]
            self._excursion["peak"] = max(peak, self.temperature_c, key=lambda v: abs(v - low))
        elif inside and self._excursion is not None:
            start = self._excursion["start"]
            self._truth.add(
                "excursion", self.device_id, start, end=iso(t), duration_s=round(t - start, 1),
                peak_c=round(self._excursion["peak"], 2), band=[low, high],
                cause="door" if self._excursion["door"] else "reefer_failure",
            )
            self._excursion = None

    def _humidity(self, h: float) -> None:
        mean = 70.0 if self.door_open else self._humidity_mean
        self.humidity_pct += h / 900.0 * (mean - self.humidity_pct)
        self.humidity_pct += self._rng.gauss(0.0, 0.05 * math.sqrt(h))
        self.humidity_pct = max(5.0, min(100.0, self.humidity_pct))

    def _shock(self, h: float, t: float, moving: bool) -> None:
        rate = self._config.knock_rate_per_h if moving else 0.0
        if self.door_open:
            rate = self._config.hub_knock_rate_per_h
        if rate > 0 and self._rng.random() < rate / 3600.0 * h:
            g = self._rng.uniform(2.5, 8.0)
            self._truth.add("shock", self.device_id, t, shock_g=round(g, 2))
            self._peak_g = max(self._peak_g, g)
        elif moving:
            self._peak_g = max(self._peak_g, abs(self._rng.gauss(0.1, 0.05)))

    def reading(self) -> Sensors:
        """The values for the next fix; the shock peak starts over after it."""
        peak, self._peak_g = self._peak_g, 0.0
        return {
            "temperature_c": round(self.temperature_c, 2),
            "humidity_pct": round(self.humidity_pct, 1),
            "shock_g": round(peak, 2),
            "light_lux": round(self._rng.uniform(150.0, 500.0), 0) if self.door_open else 0.0,
        }
