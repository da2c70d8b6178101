"""Cost of the outlier filter per fix, next to the anchor-only check it replaced.

    python -m bench.outlier_filter [--devices 1000] [--fixes 100] [--repeat 5]

Batches of one fix per device (the 1 Hz fleet case), a glitch in every 50th fix. Prints
the median microseconds per fix of each and their ratio.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from ingest.outliers import DeviceTrack, LastFix, Rules, advance
from shiptrack.eta.geo import haversine_m
from shiptrack.fix import Fix

T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)


def baseline(fixes: list[Fix], last: dict[str, LastFix], max_speed_mps: float
             ) -> tuple[list[Fix], dict[str, LastFix]]:
    """The previous filter: each fix against the device's last accepted one."""
    moved: dict[str, LastFix] = {}
    live: list[Fix] = []
    for fix in sorted(fixes, key=lambda f: f.ts):
        prev = moved.get(fix.device_id) or last.get(fix.device_id)
        if prev is not None:
            if fix.ts <= prev.ts:
                continue
            dt = (fix.ts - prev.ts).total_seconds()
            if haversine_m(prev.lat, prev.lon, fix.lat, fix.lon) > max_speed_mps * dt:
                fix.outlier = True
                continue
        moved[fix.device_id] = LastFix(fix.ts, fix.lat, fix.lon)
        live.append(fix)
    return live, moved


def batches(devices: int, steps: int, seed: int = 1) -> list[list[Fix]]:
    rng = random.Random(seed)
    out = []
    for k in range(steps):
        batch = []
        for d in range(devices):
            lat, lon = 50.0 + d * 0.01 + k * 0.0002, 8.0
            if rng.random() < 0.02:
                lat += 1.0  # a glitch 111 km away
            batch.append(Fix(device_id=f"d{d}", ts=T0 + timedelta(seconds=k), lat=lat,
                             lon=lon, accuracy=8.0))
        out.append(batch)
    return out


def run_new(data: list[list[Fix]], rules: Rules) -> float:
    tracks: dict[str, DeviceTrack] = {}
    started = time.perf_counter()
    for batch in data:
        _, moved = advance(batch, tracks, rules)
        tracks.update(moved)
    return time.perf_counter() - started


def run_old(data: list[list[Fix]], rules: Rules) -> float:
    last: dict[str, LastFix] = {}
    started = time.perf_counter()
    for batch in data:
        _, moved = baseline(batch, last, rules.max_speed_mps)
        last.update(moved)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--fixes", type=int, default=100, help="fixes per device")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rules = Rules(300 / 3.6)
    n = args.devices * args.fixes
    new, old = [], []
    for _ in range(args.repeat):
        new.append(run_new(batches(args.devices, args.fixes), rules) / n * 1e6)
        old.append(run_old(batches(args.devices, args.fixes), rules) / n * 1e6)
    a, b = statistics.median(new), statistics.median(old)
    print(f"{n} fixes: robust filter {a:.2f} us/fix, anchor-only {b:.2f} us/fix, "
          f"ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
