"""The ETA on every set of real trips in ``../shared/data/`` and on the simulator's trips.

For each ``*.trips.jsonl.gz`` in the shared data folder (``../shared/data`` from the
repository's root; skipped with a message when it is absent) and for the simulator's
trips (``bench.eta_trips``, generated into a temporary file unless ``--sim FILE`` names
one), runs the same prequential replay as ``shiptrack eta-eval`` and prints one table:
mean absolute error (minutes) of shiptrack and of the two baselines at 0/25/50/75 % of
the trip, how much better shiptrack is than the better baseline there, and the 80 %
interval's coverage::

    python -m bench.eta_real                    # every set, every trip (several minutes)
    python -m bench.eta_real --sample 4         # a deterministic quarter of each set
    python -m bench.eta_real --json
    python -m bench.eta_real --sample 50 --offset 3 --only vessels   # another fiftieth, ships
    python -m bench.eta_real --data ../heldout --only porto   # sets kept out of development

``--sample K`` keeps the trips whose CRC-32 of ``trip_id`` is divisible by ``K``: the
same trips on every run and machine, spread over the whole period.

How sure a figure is: on a few hundred trips "better than the better baseline" moves by
points from one draw of trips to the next, so the table also gives its 90 % interval
(``better_by_90``): a paired bootstrap over the trips (``DRAWS`` resamples, the same trips
for shiptrack and both baselines, the better baseline chosen again in each), the 5th and
95th percentiles. A goal missed with the interval's top under it is missed on this set
whatever the draw; one inside it is not settled by the set.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shiptrack.eta.cli import open_text
from shiptrack.eta.evaluate import CHECKPOINTS, Report, evaluate
from shiptrack.eta.trips import Trip, read_trips

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
GOAL = 0.20  # better than the better baseline by this much
COVERAGE = (0.75, 0.85)
DRAWS = 2_000  # bootstrap resamples of the trips
SEED = 16
BASELINES = ("constant_speed", "avg_speed_so_far")


def load(path: Path, sample: int, offset: int = 0) -> list[Trip]:
    with open_text(path) as f:
        trips = [t for t in read_trips(f) if isinstance(t, Trip)]
    return [t for t in trips
            if sample <= 1 or zlib.crc32(t.trip_id.encode()) % sample == offset % sample]


def better_by_interval(ours: Sequence[float], *baselines: Sequence[float],
                       draws: int = DRAWS, seed: int = SEED) -> tuple[float, float] | None:
    """The 5th and 95th percentiles of ``1 - MAE(ours) / min(MAE(baseline))`` over
    bootstrap resamples of the trips (paired: row ``i`` of every list is trip ``i``'s
    signed error at one checkpoint); None with fewer than two trips."""
    err = np.abs(np.asarray([ours, *baselines], dtype=np.float64))
    n = err.shape[1]
    if n < 2:
        return None
    picks = np.random.default_rng(seed).integers(0, n, size=(draws, n))
    mae = np.stack([e[picks].mean(axis=1) for e in err])  # (models, draws)
    best = mae[1:].min(axis=0)
    better = 1.0 - mae[0] / np.maximum(best, 1e-9)
    lo, hi = np.quantile(better, (0.05, 0.95))
    return round(float(lo), 3), round(float(hi), 3)


def row(name: str, report: Report, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"set": name, "trips": report.trips, "seconds": round(seconds, 1)}
    for k in CHECKPOINTS:
        ours = report.mae_min("shiptrack", k)
        best = min(v for m in BASELINES
                   if (v := report.mae_min(m, k)) is not None)
        out[str(k)] = {"shiptrack": ours, "constant_speed": report.mae_min("constant_speed", k),
                       "avg_speed_so_far": report.mae_min("avg_speed_so_far", k),
                       "better_by": None if ours is None or not best
                       else round(1.0 - ours / best, 3),
                       "better_by_90": better_by_interval(
                           report.errors["shiptrack"][k],
                           *(report.errors[m][k] for m in BASELINES)),
                       "coverage": report.coverage(k)}
    out["goal_met"] = all(
        (c := out[str(k)])["better_by"] is not None and c["better_by"] >= GOAL
        and c["coverage"] is not None and COVERAGE[0] <= c["coverage"] <= COVERAGE[1]
        for k in CHECKPOINTS)
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| set | trips | shiptrack MAE 0/25/50/75 | constant speed | avg speed so far "
             "| better than the better baseline | its 90 % interval | 80 % coverage |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        def cells(key: str, fmt: str, r: dict[str, Any] = r) -> str:
            return " / ".join("-" if (v := r[str(k)][key]) is None else format(v, fmt)
                              for k in CHECKPOINTS)
        spans = " / ".join("-" if (v := r[str(k)]["better_by_90"]) is None
                           else f"{v[0]:.0%}..{v[1]:.0%}" for k in CHECKPOINTS)
        lines.append(f"| {r['set']} | {r['trips']} | {cells('shiptrack', '.1f')} | "
                     f"{cells('constant_speed', '.1f')} | {cells('avg_speed_so_far', '.1f')} | "
                     f"{cells('better_by', '.0%')} | {spans} | {cells('coverage', '.2f')} |")
    return "\n".join(lines)


def sets(sim: Path | None, tmp: Path, only: str | None = None,
         data: Sequence[Path] = (SHARED,)) -> list[tuple[str, Path]]:
    found = [p for d in data if d.is_dir() for p in sorted(d.glob("*.trips.jsonl.gz"))]
    if not found:
        print(f"no real trips: {', '.join(map(str, data))} absent or empty; skipped",
              file=sys.stderr)
    named = [(p.name.removesuffix(".trips.jsonl.gz"), p) for p in found]
    if only is not None:
        return [(name, p) for name, p in named if only in name]
    if sim is None:
        from bench.eta_trips import generate

        sim = tmp / "sim.jsonl"
        generate(sim, 24, 14.0, 60.0, 7, 700.0)
    return [*named, ("simulator (bench.eta_trips)", sim)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, default=1, help="keep 1 trip in K (CRC-32)")
    parser.add_argument("--sim", type=Path, help="simulator trips (default: generated)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--offset", type=int, default=0,
                        help="with --sample K: keep the trips whose CRC-32 mod K is this")
    parser.add_argument("--only", help="run only the sets whose name contains this")
    parser.add_argument("--data", type=Path, action="append",
                        help="a folder of *.trips.jsonl.gz to run instead of the shared "
                             "one (repeatable): sets held out from development")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in sets(args.sim, Path(tmp), args.only, args.data or (SHARED,)):
            started = time.perf_counter()
            report = evaluate(load(path, args.sample, args.offset))
            rows.append(row(name, report, time.perf_counter() - started))
            print(f"{name}: {rows[-1]['trips']} trips, {rows[-1]['seconds']} s",
                  file=sys.stderr)
    print(json.dumps(rows) if args.json else table(rows))
    return 0 if all(r["goal_met"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
