"""``bench.eta_real --data``: sets held out from development are run from other folders."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from bench.eta_real import main

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
