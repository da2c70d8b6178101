"""Load mode: N devices publishing at a target aggregate rate, across processes.

Each worker process owns a slice of the devices and its share of the rate. It paces
itself against its own monotonic clock in 5 ms slices, publishing the messages that are
due in one socket write (``rawmqtt``: paho's per-message cost would cap a process at
~7k QoS 1 / ~13k QoS 0 messages a second, see LIMITS.md). Devices are light: a truck
moving along a real road route (``roads``) at a steady speed, stamped with the wall clock
(epoch milliseconds), so every fix is plausible and none is an outlier. The parent
shows a live progress line (rich) and returns the summary: sent, acknowledged (QoS 1
PUBACKs), achieved rate. QoS 1 is paced by the broker too: a worker never has more than
``MAX_OUTSTANDING`` messages unacknowledged (packet ids are 16 bits).
"""

from __future__ import annotations

import multiprocessing as mp
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from shiptrack.mqtturl import MqttTarget
from shiptrack.topics import device_topic
from simulator.geo import Polyline
from simulator.rawmqtt import RawMqttError, RawPublisher
from simulator.roads import road_route

SLICE_S = 0.005
MAX_OUTSTANDING = 20_000
DRAIN_S = 5.0
LOAD_HUBS = ("Berlin", "Hamburg", "Hannover", "Leipzig", "Dresden", "Prague", "Poznan")


@dataclass(frozen=True)
class LoadPlan:
    target: MqttTarget
    devices: int
    rate: float  # messages per second, all processes together
    duration_s: float
    processes: int = 1
    qos: int = 1
    topic_prefix: str = ""
    seed: int = 1
    device_prefix: str = "load-"


@dataclass(frozen=True)
class LoadStats:
    sent: int
    acknowledged: int
    elapsed: float
    target_rate: float
    qos: int
    errors: tuple[str, ...] = ()

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0


class LoadDevice:
    """A truck at a steady speed along a road route, there and back."""

    def __init__(self, device_id: str, rng: random.Random, topic: bytes) -> None:
        self.device_id = device_id
        self.topic = topic
        a, b = rng.sample(LOAD_HUBS, 2)
        self.path: Polyline = road_route(a, b).path
        self.along = rng.uniform(0.0, self.path.length_m)
        self.speed = rng.uniform(70.0, 88.0) / 3.6
        self.last_t: float | None = None
        self.seq = 0

    def fix(self, t: float) -> dict[str, Any]:
        if self.last_t is not None:
            self.along += self.speed * (t - self.last_t)
            if self.along >= self.path.length_m:
                self.along, self.path = 0.0, self.path.reversed()
        self.last_t = t
        (lat, lon), heading = self.path.locate(self.along)
        self.seq += 1
        return {"ts": int(t * 1000), "lat": round(lat, 6), "lon": round(lon, 6),
                "speed": round(self.speed, 1), "heading": round(heading, 1), "accuracy": 5.0,
                "seq": self.seq}


def _slice(plan: LoadPlan, worker: int) -> tuple[int, int]:
    per, extra = divmod(plan.devices, plan.processes)
    first = worker * per + min(worker, extra)
    return first, per + (1 if worker < extra else 0)


def worker_main(plan: LoadPlan, worker: int, counters: Any,
                ready: Any, go: Any, errors: Any) -> None:
    first, count = _slice(plan, worker)
    rate = plan.rate * count / plan.devices
    devices = []
    for i in range(first + 1, first + count + 1):
        device_id = f"{plan.device_prefix}{i:06d}"
        topic = device_topic(device_id, plan.topic_prefix).encode()
        devices.append(LoadDevice(device_id, random.Random(f"load:{plan.seed}:{i}"), topic))
    try:
        pub = RawPublisher(plan.target, f"shiptrack-load-{uuid.uuid4().hex[:10]}")
    except (OSError, RawMqttError) as exc:
        errors.put(f"worker {worker}: cannot connect to {plan.target.url}: {exc}")
        with ready.get_lock():
            ready.value += 1
        return
    with ready.get_lock():
        ready.value += 1
    go.wait()
    try:
        _publish(pub, devices, rate, plan, counters, worker)
    except RawMqttError as exc:
        errors.put(f"worker {worker}: {exc}")
    finally:
        counters[3 * worker] = pub.sent
        counters[3 * worker + 1] = pub.acked
        pub.close()


def _publish(pub: RawPublisher, devices: list[LoadDevice], rate: float, plan: LoadPlan,
             counters: Any, worker: int) -> None:
    encode = msgspec.json.Encoder().encode
    start = time.monotonic()
    end = start + plan.duration_s
    k = 0
    now = start
    while now < end:
        due = int(rate * (now - start)) - pub.sent
        if plan.qos and pub.sent - pub.acked >= MAX_OUTSTANDING:
            due = 0
        if due > 0:
            t = time.time()
            batch = []
            for _ in range(due):
                device = devices[k % len(devices)]
                k += 1
                batch.append((device.topic, encode(device.fix(t))))
            pub.publish_many(batch, plan.qos)
            counters[3 * worker] = pub.sent
            counters[3 * worker + 1] = pub.acked
        else:
            pub.ping_if_idle()
            time.sleep(SLICE_S)
        now = time.monotonic()
    counters[3 * worker + 2] = int((time.monotonic() - start) * 1000)
    deadline = time.monotonic() + DRAIN_S
    while plan.qos and pub.acked < pub.sent and time.monotonic() < deadline:
        time.sleep(0.01)


def run_load(plan: LoadPlan, progress: Callable[[int, int, float], None] | None = None
             ) -> LoadStats:
    """Run the workers; ``progress(sent, acked, elapsed)`` is called about 4 times a second."""
    if plan.devices < 1 or plan.rate <= 0 or plan.processes < 1 or plan.duration_s <= 0:
        raise ValueError("devices, rate, processes and duration must be positive")
    plan = LoadPlan(**{**plan.__dict__, "processes": min(plan.processes, plan.devices)})
    ctx = mp.get_context("spawn")
    counters = ctx.Array("q", 3 * plan.processes, lock=False)
    ready = ctx.Value("i", 0)
    go = ctx.Event()
    errors = ctx.Queue()
    procs = [ctx.Process(target=worker_main, args=(plan, w, counters, ready, go, errors),
                         name=f"shiptrack-load-{w}", daemon=True)
             for w in range(plan.processes)]
    for p in procs:
        p.start()
    deadline = time.monotonic() + 30.0
    while (ready.value < plan.processes and time.monotonic() < deadline
           and any(p.is_alive() for p in procs)):
        time.sleep(0.02)
    started = time.monotonic()
    go.set()
    try:
        while any(p.is_alive() for p in procs):
            time.sleep(0.25)
            if progress is not None:
                progress(sum(counters[0::3]), sum(counters[1::3]), time.monotonic() - started)
    finally:
        for p in procs:
            p.join(DRAIN_S + 5)
            if p.is_alive():
                p.terminate()
    found: list[str] = []
    while not errors.empty():
        found.append(str(errors.get_nowait()))
    publishing = max(counters[2::3]) / 1000 or (time.monotonic() - started)
    return LoadStats(sum(counters[0::3]), sum(counters[1::3]), publishing, plan.rate, plan.qos,
                     tuple(found))
