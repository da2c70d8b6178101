"""Named scenarios for ``shiptrack simulate --scenario NAME``: defaults a flag may override.

- ``fleet`` (no ``--scenario``): trucks already on the road around Berlin, a fix a
  second, no faults: what ``shiptrack up --simulate N`` runs.
- ``demo``: a few dozen trucks waiting at hubs across Europe; every trip is a shipment
  between two hubs, created through the API with a geofence at each hub, so milestones
  and ETAs show up. Adaptive reporting, a few reefers, rare outliers, 60x speed.
- ``cold-chain``: reefer trucks only, with frequent unit failures and door openings:
  temperature excursions and recoveries (recorded in the truth log).
- ``chaos``: every fault at a noticeable rate (``FaultConfig.chaos``) plus GPS outliers.
- ``load``: N devices at a target aggregate rate across processes (``simulator.load``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.faults import FaultConfig
from simulator.sensors import SensorConfig
from simulator.tracker import TrackerConfig


@dataclass(frozen=True)
class Scenario:
    name: str
    devices: int
    interval_s: float
    speed: float
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    sensors: SensorConfig = field(default_factory=SensorConfig)
    europe: bool = False  # all built-in hubs (else those near Berlin)
    start_at_hub: bool = False
    provision: bool = False
    max_leg_km: float | None = None
    hub_dwell_s: tuple[float, float] = (15 * 60.0, 45 * 60.0)
    span_s: float = 8 * 3600.0  # simulated time the run is planned for (clock start)


SCENARIOS: dict[str, Scenario] = {
    "fleet": Scenario("fleet", devices=10, interval_s=1.0, speed=1.0),
    "demo": Scenario(
        "demo", devices=30, interval_s=30.0, speed=60.0,
        tracker=TrackerConfig(interval_s=30.0, adaptive=True, stationary_interval_s=300.0,
                              outlier_rate=0.0005),
        sensors=SensorConfig(reefer_share=0.3, failure_rate_per_h=0.05),
        europe=True, start_at_hub=True, provision=True, max_leg_km=700.0,
        hub_dwell_s=(20 * 60.0, 60 * 60.0), span_s=12 * 3600.0,
    ),
    "cold-chain": Scenario(
        "cold-chain", devices=20, interval_s=60.0, speed=60.0,
        tracker=TrackerConfig(interval_s=60.0),
        sensors=SensorConfig(reefer_share=1.0, failure_rate_per_h=0.4,
                             knock_rate_per_h=0.3),
        europe=True, start_at_hub=True, provision=True, max_leg_km=700.0,
        hub_dwell_s=(30 * 60.0, 60 * 60.0), span_s=12 * 3600.0,
    ),
    "chaos": Scenario(
        "chaos", devices=20, interval_s=5.0, speed=10.0,
        tracker=TrackerConfig(interval_s=5.0, outlier_rate=0.002),
        faults=FaultConfig.chaos(), span_s=2 * 3600.0,
    ),
    "load": Scenario("load", devices=1000, interval_s=1.0, speed=1.0),
}
