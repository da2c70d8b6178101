"""Ingest's cost per batch, in one process: ``Pipeline.process`` on batches of single-fix
messages of devices it already knows (the steady 1 Hz fleet case), on the real
PostgreSQL, with a source that acknowledges and publishes to nowhere. No broker, no
publisher: what the pipeline itself costs per batch (its database round trips
included), with less of the machine's noise than ``bench.ingest_throughput``.

    SHIPTRACK_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        python -m bench.pipeline_batch [--size 50] [--batches 400] [--devices 1000]

Run it from two checkouts (the same interpreter) to compare them: prints the median and
mean milliseconds per batch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import UTC, datetime, timedelta

from bench.scratch import scratch_database
from ingest.mqtt_source import Inbound
from ingest.pipeline import Pipeline
from shiptrack.config import Settings


class Nowhere:
    def ack(self, batch: list[Inbound]) -> int:
        return len(batch)

    def publish(self, topic: str, payload: bytes) -> None:
        pass


class Stream:
    """Single-fix messages, round-robin over ``devices``, 10 ms apart."""

    def __init__(self, devices: int) -> None:
        self.devices = devices
        self.k = 0
        self.base = datetime.now(UTC) - timedelta(hours=2)

    def batch(self, size: int) -> list[Inbound]:
        out = []
        for _ in range(size):
            k = self.k
            ts = self.base + timedelta(milliseconds=10 * k)
            body = {"ts": ts.isoformat(), "lat": 50 + (k % 997) * 1e-6, "lon": 8.0,
                    "speed": 3.0}
            out.append(Inbound(0, k, 1, f"shiptrack/v1/devices/dev-{k % self.devices}/position",
                               json.dumps(body).encode(), time.time()))
            self.k += 1
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=50, help="messages per batch")
    parser.add_argument("--batches", type=int, default=400)
    parser.add_argument("--devices", type=int, default=1000)
    args = parser.parse_args()
    with scratch_database() as url:
        pipeline = Pipeline(Settings(database_url=url, mqtt_url="mqtt://127.0.0.1:1"),
                            Nowhere(), url)
        stream = Stream(args.devices)
        for _ in range(-(-args.devices // args.size)):  # every device known
            pipeline.process(stream.batch(args.size))
        times = []
        for _ in range(args.batches):
            batch = stream.batch(args.size)
            started = time.perf_counter()
            pipeline.process(batch)
            times.append(time.perf_counter() - started)
        pipeline.close()
        print(f"{args.size}-message batches: median {1000 * statistics.median(times):.2f} ms,"
              f" mean {1000 * statistics.mean(times):.2f} ms per batch")


if __name__ == "__main__":
    main()
