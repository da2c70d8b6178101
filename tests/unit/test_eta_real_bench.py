"""``bench.eta_real --data``: sets held out from development are run from other folders."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from bench.eta_real import better_by_interval, main

from .test_eta_stacking import vessels


def test_held_out_folders_are_run_instead_of_the_shared_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for folder, name, n in (("a", "taxis", 12), ("b", "cars", 14)):
        (tmp_path / folder).mkdir()
        with gzip.open(tmp_path / folder / f"{name}.trips.jsonl.gz", "wt") as f:
            f.write("".join(json.dumps(t) + "\n" for t in vessels(n)))
    main(["--data", str(tmp_path / "a"), "--data", str(tmp_path / "b"), "--only", "", "--json"])
    rows = json.loads(capsys.readouterr().out)
    assert [(r["set"], r["trips"]) for r in rows] == [("taxis", 12), ("cars", 14)]


def test_the_better_by_interval_is_a_paired_bootstrap_over_the_trips() -> None:
    # every trip: ours 0.8 of the better baseline's error, the other baseline worse; the
    # trips' errors differ a hundredfold, so only a paired resample keeps it at 20 %
    base = [60.0 * (1 + i % 100) for i in range(300)]
    ours = [0.8 * e for e in base]
    worse = [2.0 * e for e in base]
    assert better_by_interval(ours, base, worse) == (0.2, 0.2)
    # the sign of an error does not matter, only its size
    assert better_by_interval([-e for e in ours], base, worse) == (0.2, 0.2)


def test_the_better_by_interval_spans_the_point_and_narrows_with_more_trips() -> None:
    rng = random.Random(3)
    def draw(n: int) -> tuple[list[float], list[float]]:
        base = [rng.expovariate(1 / 120) for _ in range(n)]
        return [b * rng.uniform(0.4, 1.2) for b in base], base
    small, large = draw(100), draw(3000)
    lo_s, hi_s = better_by_interval(*small) or (0.0, 0.0)
    lo_l, hi_l = better_by_interval(*large) or (0.0, 0.0)
    point = 1 - sum(small[0]) / sum(small[1])
    assert lo_s < point < hi_s
    assert hi_l - lo_l < (hi_s - lo_s) / 3  # sqrt(30) narrower, about
    assert lo_l < 0.2 < hi_l  # the mean ratio is 0.8
    assert better_by_interval([1.0], [2.0]) is None
