"""Partitioned ingest on NATS JetStream (issue 18, docs/SCALING.md): each device on one
worker, its state fed in time order; ownership fenced by epoch; rebalancing without
overlap. Real servers: a nats-server of the test's own (free ports, store in tmp), the
machine's PostgreSQL (a database of the test's own)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from ingest.partitions import assign
from shiptrack.config import Settings
from tests.helpers import query, wait_for
from tests.integration.nats_fixture import (
    PARTITIONS,
    Journal,
    fixes,
    nats_server,
    nats_settings,
    publish311,
    settled,
    stored,
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
    assert stored(db) == devices * per
    seen = per_device(journal)
    assert len(seen) == devices
    workers = {w for w, _ in journal.batches}
    assert workers == {"wa", "wb"}
    for device, inputs in seen.items():
        assert len({w for w, _ in inputs}) == 1, f"{device} on two workers"
        assert [s for _, s in inputs] == list(range(per)), f"{device} out of order"
    rows = query(db, "SELECT partition, owner, epoch FROM ingest_partitions ORDER BY 1")
    assert [(p, o) for p, o, _ in rows] == sorted(assign(PARTITIONS, ["wa", "wb"]).items())
    last = query(db, "SELECT device_id, lon FROM devices WHERE device_id = 'dev.7'")
    assert last[0][1] == 12.9985 + (per - 1) * 0.0003
