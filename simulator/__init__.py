"""The device simulator: a deterministic fleet model, faults, scenarios and an MQTT publisher.

``Fleet`` (pure, time passed in) drives trucks along real roads (``roads``) and produces
their trackers' messages with faults applied; ``run`` publishes them at a steady pace;
``run_load`` is the multi-process load generator; ``simulator.cli.simulate`` is the
``shiptrack simulate`` command.
"""

from simulator.cities import CITIES, Hub
from simulator.faults import FaultConfig
from simulator.fleet import Fix, Fleet, FleetConfig, Message, Phase, Vehicle
from simulator.load import LoadPlan, LoadStats, run_load
from simulator.payload import PositionPayload, Sensors, format_ts
from simulator.publisher import SimulatorError, Stats, run
from simulator.roads import RoadNetwork, Route, road_route
from simulator.routes import Leg, hubs_near, make_leg
from simulator.scenarios import SCENARIOS, Scenario
from simulator.sensors import SensorConfig
from simulator.tracker import TrackerConfig
from simulator.truth import TruthLog

__all__ = [
    "CITIES",
    "SCENARIOS",
    "FaultConfig",
    "Fix",
    "Fleet",
    "FleetConfig",
    "Hub",
    "Leg",
    "LoadPlan",
    "LoadStats",
    "Message",
    "Phase",
    "PositionPayload",
    "RoadNetwork",
    "Route",
    "Scenario",
    "SensorConfig",
    "Sensors",
    "SimulatorError",
    "Stats",
    "TrackerConfig",
    "TruthLog",
    "Vehicle",
    "format_ts",
    "hubs_near",
    "make_leg",
    "road_route",
    "run",
    "run_load",
]
