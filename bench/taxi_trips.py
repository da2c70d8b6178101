"""Real taxi trips for ``bench.eta_real --data DIR``, cut from two public formats by the
rules of ``../shared/data/README.md`` (none of the data is in the repository)::

    python -m bench.taxi_trips porto train.csv DIR/porto-taxi.trips.jsonl.gz
    python -m bench.taxi_trips shenzhen 2016_07_08.csv DIR/shenzhen-taxi.trips.jsonl.gz
    python -m bench.eta_real --data DIR --only taxi

- ``porto``: the ECML/PKDD 2015 "Taxi Service Trajectory" CSV (Porto, 2013-2014): one
  trip a row, ``POLYLINE`` a JSON list of ``[lon, lat]`` every 15 s from ``TIMESTAMP``
  (Unix seconds); rows with ``MISSING_DATA`` true are skipped; ``TAXI_ID`` is the device.
- ``shenzhen``: rows ``plate,longitude,latitude,YYYY-mm-dd HH:MM:SS,status`` (local time,
  UTC+8; status 1 while a fare is aboard), as in
  ``masinister/Taxi-Trajectory-Classification``'s ``data_5drivers/``: a trip is a fare,
  a run of occupied fixes (one vacant fix inside a run is a glitch); the plate is the
  device, so a driver's clocks run from fare to fare.

Cutting (the shared sets' rules): fixes sorted, repeated timestamps and fixes that cannot
be reached from the last kept one (over ``MAX_KMH``) dropped; split at gaps over 10
minutes; parked fixes at both ends trimmed; trips under 5 minutes, under 10 fixes or
never 500 m from their start dropped. Output: the ``eta-eval`` input form, gzipped, in
departure order.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

from shiptrack.eta.convert import dumps
from shiptrack.eta.geo import haversine_m
from shiptrack.eta.trips import Trip

Fix = tuple[float, float, float]  # ts, lat, lon
MAX_KMH = 250.0
GAP_S = 600.0
PARKED_M = 50.0
MIN_S, MIN_FIXES, MIN_REACH_M = 300.0, 10, 500.0
PORTO_EVERY_S = 15.0
SHENZHEN_TZ = timezone(timedelta(hours=8))


def _reachable(a: Fix, b: Fix) -> bool:
    return haversine_m(a[1], a[2], b[1], b[2]) <= MAX_KMH / 3.6 * max(b[0] - a[0], 1.0)


def clean(fixes: Iterable[Fix]) -> list[Fix]:
    """Sorted; repeated timestamps, impossible positions and unreachable fixes dropped."""
    out: list[Fix] = []
    for f in sorted(fixes):
        if out and f[0] == out[-1][0]:
            continue
        if not (-90.0 <= f[1] <= 90.0 and -180.0 <= f[2] <= 180.0) or f[1:] == (0.0, 0.0):
            continue
        if out and not _reachable(out[-1], f):
            continue
        out.append(f)
    return out


def split_gaps(fixes: list[Fix]) -> list[list[Fix]]:
    pieces: list[list[Fix]] = []
    for f in fixes:
        if not pieces or f[0] - pieces[-1][-1][0] > GAP_S:
            pieces.append([])
        pieces[-1].append(f)
    return pieces


def trim_parked(fixes: list[Fix]) -> list[Fix]:
    """Without the fixes within ``PARKED_M`` of the first one (before it leaves) and of
    the last one (after it arrived), but those two."""
    def near(a: Fix, b: Fix) -> bool:
        return haversine_m(a[1], a[2], b[1], b[2]) <= PARKED_M

    s = 0
    while s + 1 < len(fixes) and near(fixes[0], fixes[s + 1]):
        s += 1
    e = len(fixes) - 1
    while e - 1 > s and near(fixes[-1], fixes[e - 1]):
        e -= 1
    return fixes[s:e + 1]


def accepted(fixes: list[Fix]) -> bool:
    return (len(fixes) >= MIN_FIXES and fixes[-1][0] - fixes[0][0] >= MIN_S
            and max(haversine_m(fixes[0][1], fixes[0][2], f[1], f[2]) for f in fixes)
            >= MIN_REACH_M)


def cut(fixes: Iterable[Fix]) -> list[list[Fix]]:
    """The trips in one vehicle's run of fixes."""
    return [t for piece in split_gaps(clean(fixes)) if accepted(t := trim_parked(piece))]


def porto(rows: Iterable[dict[str, str]]) -> Iterator[tuple[str, str, list[Fix]]]:
    for row in rows:
        if row.get("MISSING_DATA", "").strip().lower() == "true":
            continue
        try:
            t0 = float(row["TIMESTAMP"])
            line = json.loads(row["POLYLINE"])
        except (KeyError, ValueError):
            continue
        fixes = [(t0 + PORTO_EVERY_S * i, float(p[1]), float(p[0])) for i, p in enumerate(line)]
        pieces = cut(fixes)
        for k, trip in enumerate(pieces):
            yield (row["TRIP_ID"] if len(pieces) == 1 else f"{row['TRIP_ID']}-{k}",
                   row.get("TAXI_ID", ""), trip)


def shenzhen(rows: Iterable[list[str]]) -> Iterator[tuple[str, str, list[Fix]]]:
    logs: dict[str, list[tuple[float, float, float, int]]] = {}
    for row in rows:
        try:
            plate, x, y, when, flag = row
            ts = datetime.strptime(when.strip(), "%Y-%m-%d %H:%M:%S").replace(
                tzinfo=SHENZHEN_TZ).timestamp()
            logs.setdefault(plate, []).append((ts, float(y), float(x), int(flag)))
        except ValueError:
            continue  # the header, a torn row
    for plate, log in sorted(logs.items()):
        fares: list[list[Fix]] = []
        aboard, vacant = False, 0
        for ts, lat, lon, status in sorted(log):
            if status == 1:
                if not aboard:
                    fares.append([])
                aboard, vacant = True, 0
                fares[-1].append((ts, lat, lon))
            elif aboard:
                vacant += 1
                aboard = vacant < 2
        for k, fare in enumerate(fares):
            for j, trip in enumerate(cut(fare)):
                yield f"sz-{plate}-{k}-{j}", f"sz-{plate}", trip


def write(trips: Iterable[tuple[str, str, list[Fix]]], out: Path) -> int:
    """The trips in departure order, in ``eta-eval``'s form (``convert.dumps``)."""
    ordered = sorted(trips, key=lambda t: (t[2][0][0], t[0]))
    with gzip.open(out, "wt", encoding="utf-8") as f:
        for trip_id, device, fixes in ordered:
            trip = Trip(trip_id, [ts for ts, _, _ in fixes],
                        [round(lat, 6) for _, lat, _ in fixes],
                        [round(lon, 6) for _, _, lon in fixes], device_id=device or None)
            f.write(dumps(trip) + "\n")
    return len(ordered)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("format", choices=("porto", "shenzhen"))
    parser.add_argument("source", type=Path, help="the CSV")
    parser.add_argument("out", type=Path, help="the trips file to write (.jsonl.gz)")
    args = parser.parse_args(argv)
    with args.source.open(newline="", encoding="utf-8") as f:
        trips = porto(csv.DictReader(f)) if args.format == "porto" else shenzhen(csv.reader(f))
        n = write(trips, args.out)
    print(f"{n} trips -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
