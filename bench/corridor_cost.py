"""The geometry cost budget: what building a corridor costs, what refusing one costs, and
what ingest pays to load a corridor the API built (WKB) instead of building it.

    python -m bench.corridor_cost [--rounds 3]

Each case runs in a child process of its own (fork), so that its peak RSS is its own:

- build: ``geodesy.corridor_polygon`` (what the API does once at write; what ingest did
  on every load before precomputing), then ``shape_frame`` (ingest's prepared frame);
- refuse: ``check_corridor_cost`` alone (what a refused request costs now);
- load: ``from_wkb`` of the built polygon, then ``shape_frame`` (what ingest does now).

Cases above the budget are built too, with the budget bypassed, to show what they would
have cost. CPU seconds of the child (user + system) and its peak RSS; medians of rounds.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import statistics
from typing import Any

CASES: list[tuple[str, list[list[float]], float]] = [
    ("city route 30 km x 500 m", [[13.0, 52.0], [13.2, 52.1], [13.44, 52.0]], 500.0),
    ("country 1,000 km x 2 km", [[6.0, 47.5], [10.0, 50.0], [14.0, 54.0]], 2000.0),
    ("continent 6,700 km x 100 km", [[0.0, 0.0], [60.0, 0.0]], 100_000.0),
    ("5 vertices 17,800 km x 100 km (refused)",
     [[0.0, 0.0], [40.0, 0.0], [80.0, 0.0], [120.0, 0.0], [160.0, 0.0]], 100_000.0),
    ("5 vertices 41,000 km x 100 km (refused)",
     [[-179.0, 10.0], [-60.0, 10.0], [60.0, 10.0], [179.0, 10.0], [0.0, 0.0]], 100_000.0),
]


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _case(coords: list[list[float]], buffer_m: float, out: Any) -> None:
    from ingest.fence_index import shape_frame
    from shiptrack import geodesy
    from shiptrack.geofences import GeofenceError, check_corridor_cost, from_wkb

    line = [(float(x), float(y)) for x, y in coords]
    start = _cpu()
    try:
        check_corridor_cost(line, buffer_m)
        refused = False
    except GeofenceError:
        refused = True
    refuse_s = _cpu() - start
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = _cpu()
    geom = geodesy.corridor_polygon(line, buffer_m)
    shape_frame(geom)
    build_s = _cpu() - start
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    import shapely

    wkb = shapely.to_wkb(geom)
    start = _cpu()
    loaded = from_wkb(wkb)
    assert loaded is not None
    shape_frame(loaded)
    load_s = _cpu() - start
    out.put({"refused": refused, "refuse_s": refuse_s, "build_s": build_s, "load_s": load_s,
             "build_mb": (rss1 - rss0) / 1024, "vertices": len(shapely.get_coordinates(geom)),
             "wkb_kb": len(wkb) / 1024})


def run_case(coords: list[list[float]], buffer_m: float) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    out: Any = ctx.Queue()
    proc = ctx.Process(target=_case, args=(coords, buffer_m, out))
    proc.start()
    result: dict[str, Any] = out.get(timeout=600)
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"corridor cost, medians of {args.rounds} rounds (CPU seconds of one process)")
    print("| case | refused | refuse, ms | build, s | build peak RSS, MB | vertices | "
          "WKB, kB | load, ms | build / load |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, coords, buffer_m in CASES:
        runs = [run_case(coords, buffer_m) for _ in range(args.rounds)]

        def med(key: str, runs: list[dict[str, Any]] = runs) -> float:
            return statistics.median(r[key] for r in runs)

        build, load = med("build_s"), med("load_s")
        print(f"| {name} | {runs[0]['refused']} | {med('refuse_s') * 1000:.2f} | "
              f"{build:.2f} | {med('build_mb'):.0f} | {runs[0]['vertices']:,} | "
              f"{med('wkb_kb'):,.0f} | {load * 1000:.1f} | {build / max(load, 1e-6):.0f}x |",
              flush=True)


if __name__ == "__main__":
    main()
