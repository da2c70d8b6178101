"""The ETA's last step (``stacking``: the blend and its interval) replayed from recorded
candidates, so a change there is measured in a minute instead of a full run.

``record`` runs one prequential replay (exactly ``shiptrack eta-eval``'s) and writes, in
the order they happened, every record the stack learned (``add``: the candidates, the
time since the trip's start, the actual time left, the band before the conformal step)
and every checkpoint (its candidates and band, the actual time left, the two baselines'
predictions). ``replay`` feeds them through today's ``stacking.Stack`` and prints, per
checkpoint, the blend's mean absolute error, the better baseline's, how much better the
blend is, and the 80 % interval's coverage::

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
import statistics
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from bench.eta_real import load
from shiptrack.eta.evaluate import CHECKPOINTS, Replay, Report
from shiptrack.eta.model import EtaResult
from shiptrack.eta.stacking import NO_BAND, Stack

BASELINES = ("constant_speed", "avg_speed_so_far")


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


class _RecordingReplay(Replay):
    """``Replay`` that notes each checkpoint's candidates beside its scores."""

    def __init__(self, out: list[dict[str, Any]]) -> None:
        super().__init__()
        self.out = out
        self.history.stack = _RecordingStack(out)
        self.last: EtaResult | None = None
        estimate = self.estimator.estimate_at

        def noting(*args: Any, **kwargs: Any) -> EtaResult:
            self.last = estimate(*args, **kwargs)
            return self.last

        self.estimator.estimate_at = noting  # type: ignore[method-assign]

    def _score(self, k: int, elapsed: float, actual: float, predicted: float,
               band: tuple[float, float], remaining_m: float, done_m: float) -> None:
        super()._score(k, elapsed, actual, predicted, band, remaining_m, done_m)
        assert self.last is not None
        errors = self.report.errors
        self.out.append({"checkpoint": k, "cands": [_num(c) for c in self.last.candidates],
                         "actual": actual, "band": list(self.last.band),
                         "output": [predicted, *band],
                         "baselines": [errors[m][k][-1] + actual for m in BASELINES]})


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


def replay(path: Path, stack: Stack | None = None) -> dict[int, dict[str, float]]:
    """Per checkpoint: the blend's MAE (min), the better baseline's, better by, coverage."""
    stack = stack if stack is not None else Stack()
    err: dict[int, list[float]] = {k: [] for k in CHECKPOINTS}
    base: dict[int, list[list[float]]] = {k: [] for k in CHECKPOINTS}
    inside: dict[int, list[bool]] = {k: [] for k in CHECKPOINTS}
    for e in _events(path):
        if "add" in e:
            stack.add(_floats(e["add"]), e["elapsed"], e["actual"], _floats(e["band"]))
            continue
        k, actual = e["checkpoint"], e["actual"]
        cands = _floats(e["cands"])
        blended = stack.blend(cands[:-1], cands[-1])
        found = stack.interval(cands[:-1], cands[-1], *e["band"])
        low, high = found if found is not None else e["output"][1:]
        err[k].append(abs(blended - actual))
        base[k].append([abs(p - actual) for p in e["baselines"]])
        inside[k].append(low <= actual <= high)
    out = {}
    for k in CHECKPOINTS:
        if not err[k]:
            continue
        ours = statistics.fmean(err[k]) / 60.0
        best = min(statistics.fmean(col) for col in zip(*base[k], strict=True)) / 60.0
        out[k] = {"mae_min": round(ours, 2), "baseline_min": round(best, 2),
                  "better_by": round(1.0 - ours / best, 3) if best else math.nan,
                  "coverage": round(statistics.fmean(inside[k]), 3)}
    return out


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
    if args.command == "record":
        report = record(args.trips, args.out, args.sample, args.offset)
        print(json.dumps({"trips": report.trips, "mae_min": {
            k: report.mae_min("shiptrack", k) for k in CHECKPOINTS},
            "coverage": {k: report.coverage(k) for k in CHECKPOINTS}}))
    else:
        print(json.dumps(replay(args.events)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
