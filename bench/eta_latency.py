"""What one ETA costs in ingest: ``EtaEstimator.estimate_at`` with and without the learned
correction, per call, on one core.

The history is learned (prequentially, as ``eta-eval`` does) from a deterministic sample
of the first real trips set in ``../shared/data/`` (else from the simulator's trips), so
the correction has its real size (three boosters of ``correction.ROUNDS`` trees). Then
one device drives a trip of that set fix by fix, and each fix is estimated::

    python -m bench.eta_latency            # median and 99th percentile, microseconds

The budget is 1 ms per estimate; the figures are printed with their share of it.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.eta_real import SHARED, load
from shiptrack.eta.evaluate import Replay
from shiptrack.eta.history import History
from shiptrack.eta.model import EtaEstimator, Progress
from shiptrack.eta.speed import Motion
from shiptrack.eta.trips import Trip

BUDGET_US = 1000.0
SAMPLE = 8


def trips() -> list[Trip]:
    found = sorted(SHARED.glob("*.trips.jsonl.gz")) if SHARED.is_dir() else []
    if found:
        return load(found[0], SAMPLE)
    from bench.eta_trips import generate

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sim.jsonl"
        generate(path, 8, 4.0, 60.0, 7, 700.0)
        return load(path, 1)


def timed(history: History, trip: Trip, repeat: int) -> list[float]:
    """Microseconds per estimate; the first pass warms the caches and is not counted."""
    est = EtaEstimator(history)
    out: list[float] = []
    for n in range(repeat + 1):
        if n == 1:
            out.clear()
        plan = est.plan(trip.destination, trip.route)
        motion, progress = Motion(), Progress()
        for t, lat, lon in zip(trip.ts[:-1], trip.lats[:-1], trip.lons[:-1], strict=True):
            est.observe_at(motion, t, lat, lon)
            started = time.perf_counter()
            est.estimate_at(plan, progress, motion, t, lat, lon)
            out.append((time.perf_counter() - started) * 1e6)
    return out


def main() -> int:
    learned = trips()
    replay = Replay()
    replay.run(learned[:-1])
    replay.learn_all()
    history = replay.history
    if history.correction is None:
        print("too few trips to fit the correction", file=sys.stderr)
        return 1
    trip = max(learned[-20:], key=lambda t: len(t.ts))
    plain = History.from_json(history.to_json())
    plain.correction = None
    print(f"history from {len(learned) - 1} trips; estimating {len(trip.ts) - 1} fixes x 20")
    for name, h in (("physical model only", plain), ("with the learned correction", history)):
        costs = timed(h, trip, 20)
        median = statistics.median(costs)
        cuts = statistics.quantiles(costs, n=100)
        print(f"{name:<28} median {median:6.0f} us ({median / BUDGET_US:.0%} of 1 ms), "
              f"p90 {cuts[89]:6.0f} us ({cuts[89] / BUDGET_US:.0%}), "
              f"p99 {cuts[98]:6.0f} us ({cuts[98] / BUDGET_US:.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
