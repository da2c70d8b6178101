"""The ETA's last step (``stacking``: the blend and its interval) replayed from recorded
candidates, so a change there is measured in a minute instead of a full run.

``record`` runs one prequential replay (exactly ``shiptrack eta-eval``'s) and writes, in
the order they happened, every record the stack learned (``add``: the candidates, the
time since the trip's start, the actual time left, the band before the conformal step)
and every checkpoint (its candidates and band, the actual time left, the two baselines'
predictions). ``replay`` feeds them through today's ``stacking.Stack`` and prints
``bench.eta_real``'s table: per checkpoint, the mean absolute error of the blend and of
the two baselines, how much better the blend is, and the 80 % interval's coverage::

    python -m bench.eta_blend record ../shared/data/us-ais-vessels.trips.jsonl.gz ships.jsonl.gz
    python -m bench.eta_blend record FILE small.jsonl.gz --sample 50 --offset 1
    python -m bench.eta_blend replay ships.jsonl.gz

Nothing before the stack depends on it (the candidates, the correction and the physical
model never see the blend), so the replay of the weights is exact: with ``stacking``
unchanged it gives the run's own figures. The interval is exact while the blend is
unchanged (the records' bands were made around the recorded blend).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.eta_real import load, row, table
from shiptrack.eta.evaluate import MODELS, Replay, Report
from shiptrack.eta.model import EtaEstimator, EtaResult
from shiptrack.eta.stacking import NO_BAND, Stack

BASELINES = MODELS[1:]  # the two naive baselines, as eta-eval names them


def _num(v: float) -> float | None:
    return None if math.isnan(v) else v


class _RecordingStack(Stack):
    def __init__(self, out: list[dict[str, Any]]) -> None:
        super().__init__()
        self.out = out

    def add(self, cands: Sequence[float], elapsed_s: float, actual_s: float,
            band: Sequence[float] = NO_BAND) -> None:
        self.out.append({"add": [_num(c) for c in cands], "elapsed": elapsed_s,
                         "actual": actual_s, "band": [_num(b) for b in band]})
        super().add(cands, elapsed_s, actual_s, band)


class _NotingEstimator(EtaEstimator):
    """Keeps the last estimate, for the checkpoint scored right after it."""

    last: EtaResult | None = None

    def estimate_at(self, *args: Any, **kwargs: Any) -> EtaResult:
        self.last = super().estimate_at(*args, **kwargs)
        return self.last


class _RecordingReplay(Replay):
    """``Replay`` that notes each checkpoint's candidates beside its scores."""

    def __init__(self, out: list[dict[str, Any]]) -> None:
        super().__init__()
        self.out = out
        self.history.stack = _RecordingStack(out)
        self.noting = _NotingEstimator(self.history)
        self.estimator = self.noting

    def _score(self, k: int, elapsed: float, actual: float, predicted: float,
               band: tuple[float, float], remaining_m: float, done_m: float) -> None:
        super()._score(k, elapsed, actual, predicted, band, remaining_m, done_m)
        last = self.noting.last
        assert last is not None
        errors = self.report.errors
        self.out.append({"checkpoint": k, "cands": [_num(c) for c in last.candidates],
                         "actual": actual, "band": list(last.band), "output": list(band),
                         "baselines": {m: errors[m][k][-1] + actual for m in BASELINES}})


def record(trips_path: Path, out_path: Path, sample: int, offset: int) -> Report:
    events: list[dict[str, Any]] = []
    replay = _RecordingReplay(events)
    report = replay.run(load(trips_path, sample, offset))
    with gzip.open(out_path, "wt") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    return report


def _events(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt") as f:
        for line in f:
            yield json.loads(line)


def _floats(values: Sequence[float | None]) -> tuple[float, ...]:
    return tuple(math.nan if v is None else float(v) for v in values)


def replay(path: Path, stack: Stack | None = None) -> Report:
    """The checkpoints' errors and coverage with today's (or this) stack; the baselines'
    errors as recorded."""
    stack = stack if stack is not None else Stack()
    report = Report()
    for e in _events(path):
        if "add" in e:
            stack.add(_floats(e["add"]), e["elapsed"], e["actual"], _floats(e["band"]))
            continue
        k, actual = e["checkpoint"], e["actual"]
        cands = _floats(e["cands"])
        blended = stack.blend(cands[:-1], cands[-1])
        low, high = stack.interval(cands[:-1], cands[-1], *e["band"]) or e["output"]
        report.errors["shiptrack"][k].append(blended - actual)
        for m, predicted in e["baselines"].items():
            report.errors[m][k].append(predicted - actual)
        report.inside[k].append(low <= actual <= high)
        report.widths[k].append(high - low)
        if k == 0:  # every trip has its start
            report.trips += 1
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record", help="replay trips and write the stack's events")
    rec.add_argument("trips", type=Path)
    rec.add_argument("out", type=Path)
    rec.add_argument("--sample", type=int, default=1, help="keep 1 trip in K (CRC-32)")
    rec.add_argument("--offset", type=int, default=0, help="with --sample K: this residue")
    rep = sub.add_parser("replay", help="feed recorded events through today's stack")
    rep.add_argument("events", type=Path)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.command == "record":  # the run's own figures, to compare a replay with
        name, report = args.trips.name, record(args.trips, args.out, args.sample, args.offset)
    else:
        name, report = args.events.name, replay(args.events)
    print(table([row(name, report, time.perf_counter() - started)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
