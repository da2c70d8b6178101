"""Geofence index speed: one batched ``classify`` against the same index called point by
point, as a ratio measured in one run.

    python -m bench.fence_index [--fences 2000] [--points 200000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ingest.fence_index import Fence, FenceIndex
from shiptrack.geofences import parse_feature


def circles(rng: np.random.Generator, count: int) -> list[Fence]:
    out = []
    for i in range(count):
        lon, lat = float(rng.uniform(0, 20)), float(rng.uniform(45, 55))
        spec = parse_feature({"type": "Feature",
                              "geometry": {"type": "Point", "coordinates": [lon, lat]},
                              "properties": {"name": f"c{i}", "radius_m": 2000.0}})
        out.append(Fence(f"c{i}", f"c{i}", spec))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fences", type=int, default=2000)
    parser.add_argument("--points", type=int, default=200_000)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    index = FenceIndex(circles(rng, args.fences))
    lats = rng.uniform(45, 55, args.points)
    lons = rng.uniform(0, 20, args.points)
    margins = np.full(args.points, 10.0)
    started = time.perf_counter()
    index.classify(lats, lons, margins)
    batched = args.points / (time.perf_counter() - started)
    one_n = min(args.points, 5_000)
    started = time.perf_counter()
    for i in range(one_n):
        index.classify(lats[i:i + 1], lons[i:i + 1], margins[i:i + 1])
    one = one_n / (time.perf_counter() - started)
    print(f"fences {args.fences}: batched {batched:,.0f} points/s, point by point "
          f"{one:,.0f} points/s, ratio {batched / one:.1f}x")


if __name__ == "__main__":
    main()
