"""The tracker on a truck: when it reports, how wrong its GPS is, what it sends.

- Interval: fixed (a fix every ``interval_s``) or adaptive: every ``interval_s`` while
  moving, every ``stationary_interval_s`` while standing, and at once when the truck
  starts or stops moving.
- GPS error: a slowly varying offset (Ornstein-Uhlenbeck walk) with a standard deviation
  of half the accuracy per axis, so ~86 % of fixes lie within their ``accuracy`` of the
  truth; the accuracy is worse in town. Outliers (``outlier_rate`` per fix) jump 0.5-30 km
  (multipath, a cold start) and are recorded in the truth log.
- Format: the SPEC payload, or OwnTracks (``owntracks/{user}/{device}``; vel km/h,
  batt %, tst seconds).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from simulator.geo import offset_m
from simulator.payload import PositionPayload, format_ts
from simulator.truth import TruthLog
from simulator.vehicle import Vehicle

GPS_ERROR_TAU_S = 60.0
REPORT_DRAIN = 2e-6  # battery share one fix costs (radio, GNSS)
Format = Literal["spec", "owntracks"]


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    interval_s: float = 1.0
    adaptive: bool = False
    stationary_interval_s: float = 300.0
    outlier_rate: float = 0.0
    format: Format = "spec"


class Tracker:
    def __init__(self, device_id: str, rng: random.Random, config: TrackerConfig,
                 truth: TruthLog) -> None:
        self.device_id = device_id
        self.config = config
        self._rng = rng
        self._truth = truth
        self._accuracy_base = rng.uniform(3.0, 8.0)
        self._alt_base = rng.uniform(20.0, 300.0)
        self._gps_offset = (0.0, 0.0)
        self._last_fix_t: float | None = None
        self._last_moving = False
        self.heading = 0.0
        self.seq = 0

    def due(self, t: float, moving: bool) -> bool:
        """Whether a fix is taken at ``t`` (the fleet ticks every ``interval_s``)."""
        if self._last_fix_t is None or not self.config.adaptive:
            return True
        if moving != self._last_moving:
            return True
        wait = self.config.interval_s if moving else self.config.stationary_interval_s
        return t - self._last_fix_t >= wait - 1e-6

    def _gps_error(self, accuracy: float, elapsed_s: float) -> tuple[float, float]:
        sigma = accuracy / 2
        rho = math.exp(-elapsed_s / GPS_ERROR_TAU_S)
        jitter = sigma * math.sqrt(1 - rho * rho)
        north, east = self._gps_offset
        self._gps_offset = (
            rho * north + self._rng.gauss(0.0, jitter),
            rho * east + self._rng.gauss(0.0, jitter),
        )
        return self._gps_offset

    def fix(self, vehicle: Vehicle, clock: datetime) -> PositionPayload:
        """Take a fix of ``vehicle`` now; ``clock`` is the tracker's own (maybe skewed) time."""
        assert vehicle.t is not None
        rng, t = self._rng, vehicle.t
        elapsed = math.inf if self._last_fix_t is None else t - self._last_fix_t
        self._last_fix_t, self._last_moving = t, vehicle.moving
        town = 1.4 if vehicle.road_class == "urban" else 1.0
        accuracy = round(self._accuracy_base * town * rng.uniform(0.9, 1.3), 1)
        true_position, bearing = vehicle.leg.path.locate(vehicle.along_m)
        lat, lon = offset_m(true_position, *self._gps_error(accuracy, elapsed))
        if self.config.outlier_rate and rng.random() < self.config.outlier_rate:
            jump = rng.uniform(500.0, 30_000.0)
            angle = rng.uniform(0.0, 2 * math.pi)
            lat, lon = offset_m((lat, lon), jump * math.cos(angle), jump * math.sin(angle))
            self._truth.add("outlier", self.device_id, t, jump_m=round(jump), seq=self.seq + 1)
        else:
            vehicle.record_fix(round(lat, 7), round(lon, 7))
        moving = vehicle.moving
        if moving:  # standing still, a tracker keeps reporting its last course
            self.heading = bearing
        speed = max(0.0, vehicle.speed_ms + rng.gauss(0.0, 0.2)) if moving else 0.0
        heading = (self.heading + (rng.gauss(0.0, 0.5) if moving else 0.0)) % 360.0
        alt = self._alt_base + 25.0 * math.sin(vehicle.odometer_m / 9000.0)
        vehicle.battery = max(0.0, vehicle.battery - REPORT_DRAIN)
        self.seq += 1
        return {
            "ts": format_ts(clock),
            "lat": round(lat, 7),
            "lon": round(lon, 7),
            "speed": round(speed, 2),
            "heading": round(heading, 1) % 360.0,
            "accuracy": accuracy,
            "alt": round(alt + rng.gauss(0.0, accuracy), 1),
            "battery": round(vehicle.battery, 3),
            "seq": self.seq,
            "sensors": vehicle.sensors.reading(),
        }


def to_owntracks(device_id: str, payload: PositionPayload) -> dict[str, Any]:
    """The OwnTracks ``location`` form of a SPEC payload (SPEC: OwnTracks compatibility)."""
    ts = datetime.fromisoformat(payload["ts"])
    return {
        "_type": "location",
        "lat": payload["lat"],
        "lon": payload["lon"],
        "tst": int(ts.timestamp()),
        "vel": round(payload["speed"] * 3.6),
        "cog": round(payload["heading"]),
        "acc": round(payload["accuracy"]),
        "alt": round(payload["alt"]),
        "batt": round(payload["battery"] * 100),
        "tid": device_id[-2:],
    }


def skewed(now: datetime, skew_s: float) -> datetime:
    return now + timedelta(seconds=skew_s) if skew_s else now


def owntracks_topic(device_id: str, user: str = "sim") -> str:
    """OwnTracks' topic; ingest names the device ``owntracks.{user}.{device_id}``."""
    return f"owntracks/{user}/{device_id}"
