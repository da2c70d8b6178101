"""``bench.taxi_trips``: real taxi formats cut into ``eta-eval`` trips by the shared
sets' rules."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from bench.taxi_trips import main
from shiptrack.eta.geo import M_PER_DEG

T0 = 1_372_636_800  # 2013-07-01 00:00 UTC
DLAT = 100.0 / M_PER_DEG  # 100 m north


def read(path: Path) -> list[dict[str, object]]:
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f]


def test_porto_rows_become_trips_without_parked_ends_spikes_or_short_ones(
        tmp_path: Path) -> None:
    line = [[-8.61, 41.14]] * 3 + [[-8.61, 41.14 + i * DLAT] for i in range(1, 31)]
    line[10] = [-8.0, 42.0]  # a fix 100 km off, 15 s after the last: dropped
    short = [[-8.61, 41.14 + i * DLAT] for i in range(12)]  # 2 min 45 s: dropped
    rows = [("1", "20000001", T0, "False", line), ("2", "20000002", T0 + 60, "False", short),
            ("3", "20000003", T0 + 90, "True", line)]  # missing data: skipped
    csv = tmp_path / "train.csv"
    csv.write_text('"TRIP_ID","CALL_TYPE","ORIGIN_CALL","ORIGIN_STAND","TAXI_ID","TIMESTAMP",'
                   '"DAY_TYPE","MISSING_DATA","POLYLINE"\n' + "".join(
                       f'"{i}","C",,,"{taxi}","{t}","A","{missing}","{json.dumps(p)}"\n'
                       for i, taxi, t, missing, p in rows))
    out = tmp_path / "porto.trips.jsonl.gz"
    assert main(["porto", str(csv), str(out)]) == 0
    (trip,) = read(out)
    points = trip["points"]
    assert isinstance(points, list)
    assert (trip["trip_id"], trip["device_id"], len(points)) == ("1", "20000001", 30)
    assert points[0]["ts"] == T0 + 2 * 15  # the last parked fix before it leaves
    assert all(abs(p["lon"] + 8.61) < 1e-9 for p in points)


def test_shenzhen_fares_are_runs_of_occupied_fixes(tmp_path: Path) -> None:
    rows = ["plate,longitude,latitude,time,status"]
    for i in range(80):  # 10 s apart, 100 m apart: occupied 0-39, vacant 40-44, occupied 45-79
        status = 0 if 40 <= i < 45 or i == 20 else 1  # one vacant blip at 20: a glitch
        m, s = divmod(i * 10, 60)
        rows.append(f"7,114.0,{22.5 + i * DLAT:.6f},2016-07-08 08:{m:02d}:{s:02d},{status}")
    csv = tmp_path / "sz.csv"
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "sz.trips.jsonl.gz"
    assert main(["shenzhen", str(csv), str(out)]) == 0
    trips = read(out)
    assert [(t["trip_id"], t["device_id"]) for t in trips] == [("sz-7-0-0", "sz-7"),
                                                              ("sz-7-1-0", "sz-7")]
    first = trips[0]["points"]
    assert isinstance(first, list) and len(first) == 39  # 0-39 without the blip at 20
    assert first[0]["ts"] == 1_467_936_000  # 08:00 in Shenzhen is 00:00 UTC
