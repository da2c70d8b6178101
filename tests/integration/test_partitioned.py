"""Partitioned ingest on NATS JetStream (issue 18, docs/SCALING.md): each device on one
worker, its state fed in time order; ownership fenced by epoch; rebalancing without
overlap. Real servers: a nats-server of the test's own (free ports, store in tmp), the
machine's PostgreSQL (a database of the test's own)."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import psycopg

from ingest.mqtt_source import Inbound
from ingest.pipeline import FenceLost, Pipeline
from shiptrack.config import Settings
from shiptrack.embedded_nats import EmbeddedNats
from shiptrack.partitions import STREAM, assign
from tests.helpers import cloned_database, query, wait_for
from tests.integration.conftest import OwnPostgres
from tests.integration.nats_fixture import (
    PARTITIONS,
    Journal,
    add_band,
    fixes,
    nats_server,
    nats_settings,
    owners,
    publish311,
    settled,
    stored,
    worker_process,
    worker_thread,
)

__all__ = ["nats_server", "nats_settings"]  # fixtures


def per_device(journal: Journal) -> dict[str, list[tuple[str, int]]]:
    """Each device's committed fixes in commit order, as (worker, seq)."""
    out: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for worker, batch in journal.batches:
        for m in batch:
            device = m.topic.split("/")[-2]
            out[device].append((worker, json.loads(m.payload)["seq"]))
    return out


def test_two_workers_each_device_on_one_worker_in_time_order(
        nats_settings: Settings) -> None:
    db = nats_settings.database_url or ""
    journal = Journal()
    devices, per = 1000, 20
    with worker_thread(nats_settings, "wa", journal), \
            worker_thread(nats_settings, "wb", journal):
        wait_for(lambda: settled(db, ["wa", "wb"]), timeout=30)
        start = datetime.now(UTC) - timedelta(seconds=10 * per)
        publish311(nats_settings.mqtt_url or "", fixes(nats_settings.mqtt_topic_prefix,
                                                       devices, per, start))
        wait_for(lambda: stored(db) == devices * per, timeout=120, interval=0.2)
        # while both are up: once one leaves, the other takes its partitions
        rows = query(db, "SELECT partition, owner, epoch FROM ingest_partitions ORDER BY 1")
    assert stored(db) == devices * per
    seen = per_device(journal)
    assert len(seen) == devices
    workers = {w for w, _ in journal.batches}
    assert workers == {"wa", "wb"}
    for device, inputs in seen.items():
        assert len({w for w, _ in inputs}) == 1, f"{device} on two workers"
        assert [s for _, s in inputs] == list(range(per)), f"{device} out of order"
    assert [(p, o) for p, o, _ in rows] == sorted(assign(PARTITIONS, ["wa", "wb"]).items())
    last = query(db, "SELECT device_id, lon FROM devices WHERE device_id = 'dev.7'")
    assert last[0][1] == 12.9985 + (per - 1) * 0.0003


def test_a_third_worker_joining_takes_partitions_with_no_overlap(
        nats_settings: Settings) -> None:
    db = nats_settings.database_url or ""
    url = nats_settings.mqtt_url or ""
    prefix = nats_settings.mqtt_topic_prefix
    journal = Journal()
    devices, per = 300, 12
    start = datetime.now(UTC) - timedelta(seconds=10 * per)
    stream = fixes(prefix, devices, per, start)
    half = len(stream) // 2
    with worker_thread(nats_settings, "wa", journal), \
            worker_thread(nats_settings, "wb", journal):
        wait_for(lambda: settled(db, ["wa", "wb"]), timeout=30)
        publish311(url, stream[:half])
        with worker_thread(nats_settings, "wc", journal):
            publish311(url, stream[half:half + devices])  # while it joins
            wait_for(lambda: settled(db, ["wa", "wb", "wc"]), timeout=30)
            publish311(url, stream[half + devices:])
            wait_for(lambda: stored(db) == len(stream), timeout=60, interval=0.2)
    gained = {p for p, w in assign(PARTITIONS, ["wa", "wb", "wc"]).items() if w == "wc"}
    assert gained and gained != set(range(PARTITIONS))
    runs: dict[int, list[str]] = defaultdict(list)  # each partition's workers, in turn
    for worker, batch in journal.batches:
        for p in {m.generation for m in batch}:
            if not runs[p] or runs[p][-1] != worker:
                runs[p].append(worker)
    before = assign(PARTITIONS, ["wa", "wb"])
    for p, turns in runs.items():
        if p in gained:
            assert turns in ([before[p], "wc"], ["wc"]), (p, turns)  # handed over once
        else:
            assert turns == [before[p]], (p, turns)  # never moved
    seen = per_device(journal)
    for device, inputs in seen.items():
        seqs = [s for _, s in inputs]
        assert sorted(set(seqs)) == list(range(per)) and seqs == sorted(seqs), device
    assert query(db, "SELECT count(*) FROM dead_letters")[0][0] == 0


def stories(db: str, start: datetime) -> dict[str, list[tuple[str, float]]]:
    """Each device's events in log order, as (type, seconds after the first fix)."""
    out: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for device, kind, ts in query(db, "SELECT device_id, type, ts FROM events"
                                      " WHERE device_id IS NOT NULL ORDER BY seq"):
        out[device].append((kind, (ts - start).total_seconds()))
    return out


class Recorder:
    """A source for a Pipeline run in the test's own process: records acks and
    publishes."""

    def __init__(self) -> None:
        self.acked: list[Inbound] = []
        self.published: list[str] = []

    def ack(self, batch: list[Inbound]) -> int:
        self.acked.extend(batch)
        return len(batch)

    def publish(self, topic: str, payload: bytes) -> None:
        self.published.append(topic)


def single_process_events(settings: Settings, db: str, stream: list[tuple[str, bytes]],
                          batch: int = 500) -> set[tuple[str, str, str, datetime]]:
    """The events one process makes of ``stream`` (in publish order, in batches)."""
    add_band(db)
    own = settings.model_copy(update={"database_url": db})
    pipeline = Pipeline(own, Recorder(), db)  # type: ignore[arg-type]
    inbound = [Inbound(0, i, 1, t, p, time.time()) for i, (t, p) in enumerate(stream)]
    try:
        for i in range(0, len(inbound), batch):
            pipeline.process(inbound[i:i + batch])
    finally:
        pipeline.close()
    return events_of(db)


def events_of(db: str) -> set[tuple[str, str, str, datetime]]:
    return {(str(i), str(t), str(d), ts) for i, t, d, ts in query(
        db, "SELECT id, type, device_id, ts FROM events")}


def test_kill_9_of_a_worker_mid_stream_its_partitions_taken_over_nothing_lost_or_doubled(
        nats_settings: Settings, tmp_path: Path, admin_db_url: str, template_db: str) -> None:
    db = nats_settings.database_url or ""
    add_band(db)
    devices, per = 200, 30
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=10 * per)
    stream = fixes(nats_settings.mqtt_topic_prefix, devices, per, start)
    procs = {name: worker_process(nats_settings, name, tmp_path / f"{name}.log")
             for name in ("wa", "wb")}
    try:
        wait_for(lambda: settled(db, ["wa", "wb"]), timeout=60)
        publisher = threading.Thread(
            target=publish311, args=(nats_settings.mqtt_url or "", stream), daemon=True)
        publisher.start()
        wait_for(lambda: stored(db) >= len(stream) // 4, timeout=60, interval=0.02)
        procs["wa"].send_signal(signal.SIGKILL)  # mid-stream, likely mid-batch
        procs["wa"].wait(10)
        publisher.join(60)
        assert not publisher.is_alive()  # every fix PUBACKed
        wait_for(lambda: settled(db, ["wb"]), timeout=60)  # taken over
        wait_for(lambda: stored(db) == len(stream), timeout=90, interval=0.2)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    assert query(db, "SELECT count(*), count(DISTINCT (device_id, ts)) FROM positions")[0] \
        == (len(stream), len(stream))
    told = stories(db, start)
    assert len(told) == devices
    one = told["dev.0"]
    kinds = [k for k, _ in one]
    assert kinds.count("geofence.enter") == 1 and kinds.count("geofence.exit") == 1, one
    for device, story in told.items():  # the same path: the same events, none missed or
        assert story == one, device      # doubled
    # and exactly the events of a single process given the same fixes
    with cloned_database(admin_db_url, template_db, "shiptrack_ref") as reference:
        assert events_of(db) == single_process_events(nats_settings, reference, stream)


def stopped(pid: int) -> bool:
    """Every thread of process ``pid`` is stopped (state T in /proc)."""
    states = [(task / "stat").read_text().rsplit(")", 1)[1].split()[0]
              for task in Path(f"/proc/{pid}/task").iterdir()]
    return bool(states) and all(state in "Tt" for state in states)


def test_a_stopped_worker_resumed_after_losing_its_partitions_cannot_commit(
        nats_settings: Settings, tmp_path: Path) -> None:
    """wa stalls (SIGSTOP) in the middle of a batch's commit; wb takes its partitions; wa,
    resumed, finds its epochs gone: its batch is not committed, it drops the partitions."""
    db = nats_settings.database_url or ""
    log = tmp_path / "wa.log"
    wa = worker_process(nats_settings, "wa", log)
    stream = fixes(nats_settings.mqtt_topic_prefix, 50, 4,
                   datetime.now(UTC) - timedelta(seconds=60))
    try:
        wait_for(lambda: settled(db, ["wa"]), timeout=60)
        epochs = dict(query(db, "SELECT partition, epoch FROM ingest_partitions"))
        with psycopg.connect(db) as lock:  # wa's next fence waits on these row locks
            lock.execute("SELECT * FROM ingest_partitions FOR UPDATE")
            publish311(nats_settings.mqtt_url or "", stream)
            wait_for(lambda: query(db, "SELECT count(*) FROM pg_stat_activity WHERE"
                                       " wait_event_type = 'Lock' AND query LIKE"
                                       " '%%UPDATE ingest_partitions%%'")[0][0] > 0)
            wa.send_signal(signal.SIGSTOP)
            wait_for(lambda: stopped(wa.pid))  # kill() returns before every thread stops
            lock.rollback()  # wa's fence passes now, but wa is stopped before its commit
        assert stored(db) == 0
        with worker_thread(nats_settings, "wb"):
            wait_for(lambda: settled(db, ["wb"]), timeout=60)  # wa's lease lapsed
            wait_for(lambda: stored(db) == len(stream), timeout=60)
            taken = dict(query(db, "SELECT partition, epoch FROM ingest_partitions"))
            assert all(taken[p] > epochs[p] for p in epochs)
            wa.send_signal(signal.SIGCONT)
            wait_for(lambda: "were taken over" in log.read_text(), timeout=60)
            wait_for(lambda: settled(db, ["wa", "wb"]), timeout=60)  # back as a member
    finally:
        if wa.poll() is None:
            wa.send_signal(signal.SIGCONT)
            wa.send_signal(signal.SIGTERM)
            wa.wait(30)
    assert query(db, "SELECT count(*), count(DISTINCT (device_id, ts)) FROM positions")[0] \
        == (len(stream), len(stream))
    text = log.read_text()  # its commit failed (its session ended), then its fence did
    assert "OperationalError" in text
    assert text.index("OperationalError") < text.index("were taken over")


def backlog(nats_url: str) -> tuple[int, int, int]:
    """Over every partition's consumer: (not yet delivered, delivered but unacked,
    redelivered)."""
    async def probe() -> tuple[int, int, int]:
        nc = await nats.connect(nats_url)
        try:
            infos = await nc.jetstream().consumers_info(STREAM)
            return (sum(i.num_pending or 0 for i in infos),
                    sum(i.num_ack_pending or 0 for i in infos),
                    sum(i.num_redelivered or 0 for i in infos))
        finally:
            await nc.close()
    return asyncio.run(probe())


def test_database_down_15_s_nothing_acked_everything_stored_once_after(
        nats_settings: Settings, own_postgres: OwnPostgres) -> None:
    url = own_postgres.url
    settings = nats_settings.model_copy(update={
        "database_url": url, "nats_ack_wait_s": 5.0})  # the outage outlasts it
    start = datetime.now(UTC) - timedelta(seconds=100)
    stream = fixes(settings.mqtt_topic_prefix, 100, 10, start)
    with worker_thread(settings, "wa"):
        wait_for(lambda: settled(url, ["wa"]), timeout=30)
        publish311(settings.mqtt_url or "", stream[:500])
        wait_for(lambda: stored(url) == 500)
        wait_for(lambda: backlog(settings.nats_url or "")[:2] == (0, 0))
        own_postgres.stop()
        publish311(settings.mqtt_url or "", stream[500:])  # PUBACKed by JetStream
        time.sleep(15)  # the outage (not an assertion: nothing may be acked in it)
        waiting, unacked, _ = backlog(settings.nats_url or "")
        assert waiting + unacked == 500  # nothing acked while the database was away
        own_postgres.start()
        wait_for(lambda: stored(url) == 1000, timeout=60, interval=0.2)
        wait_for(lambda: backlog(settings.nats_url or "")[:2] == (0, 0))
        assert backlog(settings.nats_url or "")[2] == 0  # kept in progress: no copies
    assert query(url, "SELECT count(*), count(DISTINCT (device_id, ts)) FROM positions"
                 )[0] == (1000, 1000)


def test_a_broker_restart_loses_nothing_pubacked(nats_settings: Settings,
                                                 nats_server: EmbeddedNats) -> None:
    db = nats_settings.database_url or ""
    url = nats_settings.mqtt_url or ""
    start = datetime.now(UTC) - timedelta(seconds=200)
    stream = fixes(nats_settings.mqtt_topic_prefix, 100, 20, start)
    with worker_thread(nats_settings, "wa"), worker_thread(nats_settings, "wb"):
        wait_for(lambda: settled(db, ["wa", "wb"]), timeout=30)
        publish311(url, stream[:1000])
        nats_server.restart()  # whatever was not yet consumed is in its store
        publish311(url, stream[1000:])
        wait_for(lambda: stored(db) == len(stream), timeout=90, interval=0.2)
    assert query(db, "SELECT count(*), count(DISTINCT (device_id, ts)) FROM positions")[0] \
        == (len(stream), len(stream))


def test_two_api_processes_both_stream_the_live_fixes_of_the_workers(
        nats_settings: Settings) -> None:
    """The API's live feed subscribes over MQTT (3.1.1) to the live topics, which the
    workers publish on NATS: any number of API processes get every live fix."""
    import websockets

    from tests.helpers import running_api
    from tests.integration.test_streams import next_of, ws_url

    db = nats_settings.database_url or ""
    now = datetime.now(UTC).replace(microsecond=0)
    with worker_thread(nats_settings, "wa"), running_api(nats_settings) as one, \
            running_api(nats_settings) as two:
        wait_for(lambda: settled(db, ["wa"]), timeout=30)

        async def scenario() -> list[dict[str, object]]:
            async with websockets.connect(ws_url(one), compression=None) as a, \
                    websockets.connect(ws_url(two), compression=None) as b:
                await next_of(a, "snapshot")
                await next_of(b, "snapshot")
                await asyncio.to_thread(publish311, nats_settings.mqtt_url or "", fixes(
                    nats_settings.mqtt_topic_prefix, 1, 1, now))
                return [await next_of(a, "position", 20), await next_of(b, "position", 20)]

        got = asyncio.run(scenario())
    assert [(p["device_id"], p["lon"]) for p in got] == [("dev.0", 12.9985)] * 2


def test_shiptrack_up_in_nats_mode_runs_an_embedded_nats_server(
        db_url: str, tmp_path: Path) -> None:
    """SHIPTRACK_INGEST_MODE=nats: `shiptrack up` starts nats-server (devices publish to
    its MQTT listener), a partitioned worker, the API; the simulated fleet streams."""
    import os
    import subprocess
    import sys

    import websockets

    from shiptrack.embedded import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPTRACK_")}
    env |= {"SHIPTRACK_DATA_DIR": str(tmp_path), "SHIPTRACK_HTTP_PORT": str(port),
            "SHIPTRACK_DATABASE_URL": db_url, "SHIPTRACK_INGEST_MODE": "nats",
            "SHIPTRACK_EMBEDDED_MQTT_PORT": str(free_port()), "SHIPTRACK_PARTITIONS": "8"}
    proc = subprocess.Popen([sys.executable, "-m", "shiptrack", "up", "--simulate", "3"],
                            env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        token_file = tmp_path / "admin-token"
        wait_for(lambda: token_file.exists() or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, proc.communicate(timeout=10)[0]
        token = token_file.read_text().strip()

        async def first_positions() -> set[str]:
            seen: set[str] = set()
            url = f"ws://127.0.0.1:{port}/ws/fleet?token={token}"
            for _ in range(100):  # the API may still be binding its feed
                try:
                    async with websockets.connect(url) as ws:
                        while len(seen) < 3:
                            msg = json.loads(await asyncio.wait_for(ws.recv(), 30))
                            if msg["type"] == "position":
                                seen.add(msg["device_id"])
                        return seen
                except OSError:
                    await asyncio.sleep(0.2)
            return seen

        assert asyncio.run(first_positions()) == {"sim-0001", "sim-0002", "sim-0003"}
        wait_for(lambda: len(owners(db_url)) == 8)  # one worker took every partition
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert "embedded NATS JetStream (8 partitions)" in out, out
    assert "shiptrack is up" in out


def test_a_device_back_after_the_sweepers_offline_goes_online_on_its_own_worker(
        nats_settings: Settings) -> None:
    """Each worker sweeps the devices of its own partitions: a device on the worker that
    does not hold partition 0 goes offline, and online again with its next fix."""
    from shiptrack.partitions import device_partition

    settings = nats_settings.model_copy(update={"offline_after_s": 2.0,
                                                "tracking_sweep_s": 0.3})
    db = settings.database_url or ""
    owner = assign(PARTITIONS, ["wa", "wb"])
    device = next(f"dev.{i}" for i in range(1000)
                  if owner[device_partition(f"dev.{i}", PARTITIONS)] != owner[0])

    def send() -> None:
        body = {"ts": datetime.now(UTC).isoformat(), "lat": 52.0, "lon": 13.0}
        publish311(settings.mqtt_url or "", [(
            f"{settings.mqtt_topic_prefix}shiptrack/v1/devices/{device}/position",
            json.dumps(body).encode())])

    def kinds() -> list[str]:
        return [r[0] for r in query(db, "SELECT type FROM events WHERE device_id = %s"
                                        " ORDER BY seq", (device,))]

    with worker_thread(settings, "wa"), worker_thread(settings, "wb"):
        wait_for(lambda: settled(db, ["wa", "wb"]), timeout=30)
        send()
        wait_for(lambda: "device.offline" in kinds(), timeout=30)  # by its own worker
        send()
        wait_for(lambda: "device.online" in kinds(), timeout=30)
    assert kinds() == ["device.offline", "device.online"]


def test_a_lost_fence_commits_acks_publishes_and_dead_letters_nothing(
        settings: Settings) -> None:
    """Pipeline.process(batch, fence): a fence raising FenceLost rolls the batch back
    (its dead letters too), acks and publishes nothing, and
    forgets the cached device state."""
    import pytest

    db = settings.database_url or ""
    stream = fixes(settings.mqtt_topic_prefix, 2, 2, datetime.now(UTC) - timedelta(seconds=60))
    batch = [Inbound(0, i, 1, t, p, time.time()) for i, (t, p) in enumerate(stream)]
    source = Recorder()
    pipeline = Pipeline(settings, source, db)  # type: ignore[arg-type]

    def lost(conn: psycopg.Connection[object]) -> None:
        raise FenceLost("taken over")

    try:
        pipeline.process(batch[:2])
        assert stored(db) == 2 and set(pipeline.last) == {"dev.0", "dev.1"}
        published = list(source.published)
        with pytest.raises(FenceLost):
            pipeline.process(batch[2:], lost)
        bad = Inbound(0, 99, 1, f"{settings.mqtt_topic_prefix}shiptrack/v1/devices/x/"
                      "position", b"\xff not json", time.time())
        with pytest.raises(FenceLost):  # its dead letter too is under the fence
            pipeline.process([bad], lost)
    finally:
        pipeline.close()
    assert stored(db) == 2
    assert [m.mid for m in source.acked] == [0, 1] and source.published == published
    assert pipeline.last == {}
    assert query(db, "SELECT count(*) FROM dead_letters")[0][0] == 0


def test_a_worker_stops_on_sigterm_with_the_broker_away(
        nats_settings: Settings, nats_server: EmbeddedNats, tmp_path: Path) -> None:
    """The leases lapse instead of being released one by one against a broker that is
    not there (16 requests timing out would hold the exit for minutes)."""
    db = nats_settings.database_url or ""
    log = tmp_path / "wa.log"
    wa = worker_process(nats_settings, "wa", log)
    try:
        wait_for(lambda: settled(db, ["wa"]), timeout=60)
        nats_server.stop()
        wa.send_signal(signal.SIGTERM)
        assert wa.wait(60) == 0
    finally:
        if wa.poll() is None:
            wa.kill()
            wa.wait(10)
    assert "ingest worker wa stopped" in log.read_text()
