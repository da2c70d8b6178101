"""What making decoding total costs on the hot path: ``decode_position`` of a typical fix
(the SPEC's example payload), alone and in batches of 50, against the decoder of an
earlier commit (before issue #10), side by side in one process.

    python -m bench.decode_cost [--rev aac6e4b] [--rounds 5]

The earlier ``shiptrack/decode.py`` is read with ``git show REV:shiptrack/decode.py``.
Fixes per second, medians of rounds; compare the ratio, the host is shared.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

from shiptrack import decode as current


def earlier(rev: str) -> ModuleType:
    source = subprocess.run(["git", "show", f"{rev}:shiptrack/decode.py"], check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "earlier_decode.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("earlier_decode", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["earlier_decode"] = module
    spec.loader.exec_module(module)
    return module


def rate(module: ModuleType, payload: bytes, n: int, per: int, now: datetime) -> float:
    started = time.perf_counter()
    for _ in range(n):
        module.decode_position("d", "t", payload, now, 1 << 18)
    return n * per / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="aac6e4b")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    old = earlier(args.rev)
    now = datetime.now(UTC)
    one = json.dumps({
        "ts": now.isoformat(), "lat": 52.52, "lon": 13.405, "speed": 12.5, "heading": 270.0,
        "accuracy": 6.0, "alt": 34.0, "battery": 0.87, "seq": 1234,
        "sensors": {"temperature_c": 4.2, "humidity_pct": 55.0, "shock_g": 0.1,
                    "light_lux": 0.0}}).encode()
    batch = b"[" + b",".join([one] * 50) + b"]"
    print(f"| payload | {args.rev}, fixes/s | now, fixes/s | now / {args.rev} |")
    print("| --- | --- | --- | --- |")
    for name, payload, n, per in (("one fix", one, 20_000, 1), ("batch of 50", batch, 800, 50)):
        before, after = [], []
        for _ in range(args.rounds):
            before.append(rate(old, payload, n, per, now))
            after.append(rate(current, payload, n, per, now))
        b, a = statistics.median(before), statistics.median(after)
        print(f"| {name} | {b:,.0f} | {a:,.0f} | {a / b:.2f} |", flush=True)


if __name__ == "__main__":
    main()
