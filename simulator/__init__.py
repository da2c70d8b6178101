"""The device simulator: a deterministic fleet model and an MQTT publisher for it.

``Fleet`` (pure, time passed in) produces SPEC payloads; ``run`` publishes them at a
steady pace; ``simulator.cli.simulate`` is the ``shiptrack simulate`` command.
"""

from simulator.cities import CITIES, Hub
from simulator.fleet import Fleet, Phase, Vehicle
from simulator.payload import Fix, PositionPayload, Sensors, format_ts
from simulator.publisher import SimulatorError, Stats, run
from simulator.routes import Leg, hubs_near, make_leg

__all__ = [
    "CITIES",
    "Fix",
    "Fleet",
    "Hub",
    "Leg",
    "Phase",
    "PositionPayload",
    "Sensors",
    "SimulatorError",
    "Stats",
    "Vehicle",
    "format_ts",
    "hubs_near",
    "make_leg",
    "run",
]
