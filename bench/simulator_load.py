"""How fast the simulator can publish on this machine, against a real broker.

    python bench/simulator_load.py [--mqtt-url mqtt://127.0.0.1:1883] [--duration 3]

Two paths, each run for ``--duration`` seconds on a topic prefix nothing subscribes to
(so the broker only routes and drops; add a subscriber to measure end to end):

1. load mode (``simulator.load``, raw-socket publisher, light trucks), at each target
   rate and QoS, with 1 and 2 worker processes: achieved rate and acknowledged share;
2. the full model (``Fleet``: roads, sensors, faults, encoding) through paho at QoS 1,
   as fast as it goes: what a scenario like ``chaos`` can sustain per process.

Bounded on purpose: the machine is shared. Prints one table.
"""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime, timedelta

from shiptrack.mqtturl import parse_mqtt_url
from simulator.faults import FaultConfig
from simulator.fleet import Fleet, FleetConfig
from simulator.load import LoadPlan, run_load
from simulator.publisher import run
from simulator.tracker import TrackerConfig


def bench_load(url: str, duration: float) -> None:
    target = parse_mqtt_url(url)
    print(f"{'path':<10} {'procs':>5} {'qos':>3} {'target/s':>9} {'achieved/s':>10} {'acked':>7}")
    for qos, rates in ((1, (5_000, 20_000, 40_000)), (0, (20_000, 60_000))):
        for processes in (1, 2):
            for rate in rates:
                plan = LoadPlan(target, devices=5_000, rate=rate, duration_s=duration,
                                processes=processes, qos=qos,
                                topic_prefix=f"bench-{uuid.uuid4().hex[:8]}/")
                stats = run_load(plan)
                acked = f"{stats.acknowledged / max(1, stats.sent):.0%}" if qos else "-"
                print(f"{'load':<10} {processes:>5} {qos:>3} {rate:>9,} {stats.rate:>10,.0f} "
                      f"{acked:>7}" + (f"  {stats.errors}" if stats.errors else ""))


def bench_model(url: str, duration: float) -> None:
    fleet = Fleet(2_000, seed=1, config=FleetConfig(
        tracker=TrackerConfig(interval_s=1.0, outlier_rate=0.001), faults=FaultConfig.chaos()))
    start = datetime.now(UTC) - timedelta(hours=2)
    stats = run(parse_mqtt_url(url), fleet, 1.0, topic_prefix=f"bench-{uuid.uuid4().hex[:8]}/",
                duration_s=duration, speed=1e6, start_time=start)
    acked = f"{stats.acknowledged / max(1, stats.sent):.0%}"
    print(f"{'model+paho':<10} {1:>5} {1:>3} {'max':>9} {stats.rate:>10,.0f} {acked:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mqtt-url", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    began = time.monotonic()
    bench_load(args.mqtt_url, args.duration)
    bench_model(args.mqtt_url, args.duration)
    print(f"({time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    main()
