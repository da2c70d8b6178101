"""Evaluation trips for ``shiptrack eta-eval``, from the simulator, without a broker.

Runs the simulator's fleet model (``simulator.Fleet``: trucks on the built-in European
motorway network, road-class speeds, random jams, town stops, EU driver rest rules) in
simulated time, deterministically from ``--seed``, and writes every completed trip in the
SPEC's eta-eval input form with the simulator's own ``--trips`` writer (``TruthFiles``):
each trip carries its truck's ``device_id`` (additive), so ``eta-eval`` carries each
truck's driving hours from one trip to the next, as ingest does::

    python -m bench.eta_trips --out /tmp/trips.jsonl            # the documented set
    python -m bench.eta_trips --devices 4 --days 3 --interval 120 --out docs/eta-sample.jsonl

Same arguments, same bytes. Options mirror ``shiptrack simulate --scenario demo`` (trucks
waiting at hubs all over Europe, legs of at most ``--max-leg-km``, a fix every
``--interval`` seconds while moving and every 5 minutes while standing).
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from simulator.cities import CITIES
from simulator.fleet import Fleet, FleetConfig
from simulator.tracker import TrackerConfig
from simulator.truth import TruthFiles, eta_trip

START = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday


def generate(out: Path, devices: int, days: float, interval_s: float, seed: int,
             max_leg_km: float, truth: Path | None = None) -> int:
    """Write the trips completed in ``days`` simulated days; the number written."""
    tracker = TrackerConfig(interval_s=interval_s, adaptive=True, stationary_interval_s=300.0)
    config = FleetConfig(tracker=tracker, hub_dwell_s=(20 * 60.0, 60 * 60.0),
                         start_at_hub=True, max_leg_km=max_leg_km, device_prefix="eta-")
    fleet = Fleet(devices, seed=seed, hubs=CITIES, config=config)
    files = TruthFiles(truth, out)
    written = 0
    try:
        for k in range(int(days * 86400 / interval_s) + 1):
            fleet.advance(START + timedelta(seconds=k * interval_s))
            records = fleet.truth.drain()
            written += sum(eta_trip(r) is not None for r in records)
            files.write(records)
    finally:
        files.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="trips JSONL to write")
    parser.add_argument("--truth", type=Path, help="also write the simulator's truth log")
    parser.add_argument("--devices", type=int, default=24)
    parser.add_argument("--days", type=float, default=14.0, help="simulated days")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between fixes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--max-leg-km", type=float, default=700.0)
    args = parser.parse_args(argv)
    n = generate(args.out, args.devices, args.days, args.interval, args.seed, args.max_leg_km,
                 args.truth)
    print(f"{n} trips written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
