"""The pipeline's fence and forget (the interface of partitioned ingest, issue 18), on the
real PostgreSQL with a recording source in place of the broker."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ingest.mqtt_source import Inbound
from ingest.pipeline import FenceLost, Pipeline
from shiptrack.config import Settings
from tests.helpers import query, wait_for

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


class Recorder:
    """A source that records what the pipeline acknowledges and publishes."""

    def __init__(self) -> None:
        self.acked: list[Inbound] = []
        self.published: list[tuple[str, bytes]] = []

    def ack(self, batch: list[Inbound]) -> int:
        self.acked.extend(batch)
        return len(batch)

    def publish(self, topic: str, payload: bytes) -> None:
        self.published.append((topic, payload))


def message(settings: Settings, device: str, sec: int, lat: float = 10.0,
            payload: bytes | None = None) -> Inbound:
    body = payload if payload is not None else json.dumps(
        {"ts": (T0 + timedelta(seconds=sec)).isoformat(), "lat": lat, "lon": 10.0}).encode()
    topic = f"{settings.mqtt_topic_prefix}shiptrack/v1/devices/{device}/position"
    return Inbound(generation=0, mid=sec, qos=1, topic=topic, payload=body,
                   received=time.time())


def pipeline(settings: Settings) -> tuple[Pipeline, Recorder]:
    source = Recorder()
    return Pipeline(settings, source, settings.database_url or ""), source


def count(settings: Settings, sql: str) -> int:
    return int(query(settings.database_url or "", sql)[0][0])


def epoch(settings: Settings, value: int) -> None:
    """A newer owner took over: its epoch is in the table."""
    with psycopg.connect(settings.database_url or "", autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS fence_test (epoch int NOT NULL)")
        conn.execute("INSERT INTO fence_test VALUES (%s)", (value,))


def epoch_fence(owner: int) -> Any:
    """A fence as partitioned ingest writes one: the owner epoch row, checked in the
    batch's transaction (a newer owner's epoch refuses the commit)."""
    def fence(conn: psycopg.Connection[Any]) -> None:
        conn.execute("CREATE TABLE IF NOT EXISTS fence_test (epoch int NOT NULL)")
        row = conn.execute("SELECT max(epoch) FROM fence_test").fetchone()
        if row is not None and row[0] is not None and row[0] > owner:
            raise FenceLost(f"epoch {owner} is behind {row[0]}")
        conn.execute("INSERT INTO fence_test VALUES (%s)", (owner,))
    return fence


def test_a_fence_that_holds_commits_in_the_batch_transaction(settings: Settings) -> None:
    p, source = pipeline(settings)
    batch = [message(settings, "d1", 1), message(settings, "d1", 2)]
    p.process(batch, epoch_fence(1))
    assert count(settings, "SELECT count(*) FROM positions") == 2
    assert count(settings, "SELECT count(*) FROM fence_test") == 1  # written with them
    assert source.acked == batch and len(source.published) == 1
    p.close()


def test_fence_lost_rolls_back_acks_nothing_and_forgets(settings: Settings) -> None:
    p, source = pipeline(settings)
    p.process([message(settings, "d1", 1)], epoch_fence(1))
    assert "d1" in p.last and "d1" in p.tracker.states  # cached per-device state
    epoch(settings, 2)
    acked, published = len(source.acked), len(source.published)
    with pytest.raises(FenceLost):
        p.process([message(settings, "d1", 2), message(settings, "d2", 3)], epoch_fence(1))
    assert count(settings, "SELECT count(*) FROM positions") == 1  # rolled back
    assert count(settings, "SELECT count(*) FROM dead_letters") == 0
    assert (len(source.acked), len(source.published)) == (acked, published)
    assert p.last == {} and p.tracker.states == {} and p.eta.motions == {}
    # the new owner's epoch commits; the old connection is still usable
    p.process([message(settings, "d1", 2)], epoch_fence(2))
    assert count(settings, "SELECT count(*) FROM positions") == 2
    p.close()


@pytest.mark.parametrize("order", [("good", "crash"), ("crash", "good")])
def test_fence_lost_on_the_message_by_message_path_writes_no_dead_letter(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, order: tuple[str, str]) -> None:
    """A batch that fails for its content is retried message by message; the fence
    guards each message's transaction and the dead letter's ("crash" first: the fence
    refuses the dead letter itself)."""
    import ingest.pipeline as module
    from shiptrack.decode import decode_position as decode

    def crashing(device_id: str, *args: Any) -> Any:
        if device_id == "crash":
            raise RecursionError("a bug no test foresaw")
        return decode(device_id, *args)

    monkeypatch.setattr(module, "decode_position", crashing)
    p, source = pipeline(settings)
    epoch(settings, 5)
    with pytest.raises(FenceLost):
        p.process([message(settings, d, i) for i, d in enumerate(order)], epoch_fence(1))
    assert count(settings, "SELECT count(*) FROM positions") == 0
    assert count(settings, "SELECT count(*) FROM dead_letters") == 0
    assert source.acked == [] and source.published == []
    # with the fence holding, the same batch: the good one stored, the crash dead-lettered
    p.process([message(settings, d, i) for i, d in enumerate(order)], epoch_fence(5))
    assert count(settings, "SELECT count(*) FROM positions") == 1
    assert query(settings.database_url or "", "SELECT reason FROM dead_letters") == [
        ("internal_error",)]
    assert len(source.acked) == 2
    p.close()


def test_forget_drops_the_cached_state_of_those_devices_only(settings: Settings) -> None:
    p, _ = pipeline(settings)
    p.process([message(settings, "d1", 1), message(settings, "d2", 1)])
    assert {"d1", "d2"} <= p.last.keys() and {"d1", "d2"} <= p.tracker.states.keys()
    p.forget(["d1"])
    assert "d1" not in p.last and "d1" not in p.tracker.states
    assert "d2" in p.last and "d2" in p.tracker.states
    # reloaded from the database when next seen: the stored last position seeds the filter
    p.process([message(settings, "d1", 2)])
    assert p.last["d1"].accepted is not None
    assert p.last["d1"].accepted.ts == T0 + timedelta(seconds=2)
    p.forget()
    assert p.last == {} and p.tracker.states == {}
    p.close()


def test_the_sweep_sends_offline_only_for_the_devices_it_owns(settings: Settings) -> None:
    # a partitioned worker sweeps the devices of its own partitions (owns), fenced
    quick = settings.model_copy(update={"offline_after_s": 1.0})
    p, _ = pipeline(quick)
    now = json.dumps({"ts": datetime.now(UTC).isoformat(), "lat": 10.0, "lon": 10.0}).encode()
    p.process([message(quick, "mine", 1, payload=now), message(quick, "theirs", 1, payload=now)])

    def offline() -> list[str]:
        return [str(r[0]) for r in query(quick.database_url or "",
                "SELECT device_id FROM events WHERE type = 'device.offline' ORDER BY 1")]

    def swept_mine() -> bool:  # silent for a second: the sweep finds it
        p.sweep(epoch_fence(1), owns=lambda device: device == "mine")
        return offline() == ["mine"]

    wait_for(swept_mine)
    assert count(quick, "SELECT count(*) FROM fence_test") >= 1  # in the sweep's transaction
    p.sweep(owns=lambda device: device == "theirs")
    assert offline() == ["mine", "theirs"]
    p.close()
