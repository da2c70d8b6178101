"""Each fault appears at its configured rate, and shows in the bytes as a real one would.

Seeded, so the counts are fixed; the bounds are still statistical (4 standard deviations of
the binomial), so a change of the model that keeps the rates right keeps them passing.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from shiptrack.decode import decode_position
from shiptrack.topics import route_topic
from simulator.faults import FaultConfig
from simulator.fleet import Fleet, FleetConfig, Message
from simulator.tracker import TrackerConfig

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
INTERVAL = 5.0
RATES = FaultConfig(offline_rate=0.01, offline_s=(20.0, 120.0), duplicate_rate=0.05,
                    skew_rate=0.3, skew_s=(30.0, 600.0), malformed_rate=0.03,
                    reboot_rate=0.005)


def within(events: int, chances: int, p: float) -> bool:
    sigma = math.sqrt(p * (1 - p) / chances)
    return abs(events / chances - p) < 4 * sigma


@pytest.fixture(scope="module")
def chaos() -> tuple[Fleet, list[tuple[datetime, Message]]]:
    fleet = Fleet(200, seed=11, config=FleetConfig(faults=RATES,
                                                   tracker=TrackerConfig(interval_s=INTERVAL)))
    sent: list[tuple[datetime, Message]] = []
    for k in range(300):
        now = T0 + timedelta(seconds=k * INTERVAL)
        sent.extend((now, m) for m in fleet.tick(now))
    return fleet, sent


def chances(fleet: Fleet, fault: str) -> int:
    return sum(d.faults.chances[fault] for d in fleet.devices)


def count(fleet: Fleet, kind: str) -> int:
    return sum(1 for r in fleet.truth.records if r["type"] == kind)


@pytest.mark.parametrize("fault", ["offline", "duplicate", "malformed", "reboot"])
def test_each_fault_at_its_rate(chaos: tuple[Fleet, Any], fault: str) -> None:
    fleet, _ = chaos
    rate = getattr(RATES, f"{fault}_rate")
    n = chances(fleet, fault)
    assert n > 10_000
    events = count(fleet, fault)
    if fault == "offline":  # periods still open at the end have no record yet
        events += sum(1 for d in fleet.devices if d.faults.offline)
    assert within(events, n, rate), (fault, events, n, rate)


def test_clock_skew_share_of_devices(chaos: tuple[Fleet, Any]) -> None:
    fleet, sent = chaos
    skewed = {r["device_id"]: r["skew_s"] for r in fleet.truth.of_type("clock_skew")}
    assert within(len(skewed), len(fleet.devices), RATES.skew_rate)
    seen: dict[str, set[int]] = defaultdict(set)
    for now, message in sent:
        body = _json(message.payload)
        if isinstance(body, dict) and _iso(body.get("ts")):
            ts = datetime.fromisoformat(body["ts"])
            offset = (ts - now).total_seconds()
            seen[route_topic(message.topic).device_id].add(int(offset * 1000))
    for device, offsets in seen.items():
        assert len(offsets) == 1  # a fixed offset per device (ms precision)
        offset = offsets.pop() / 1000
        assert offset == pytest.approx(skewed.get(device, 0.0), abs=0.06)
        assert offset == 0 or 30 <= abs(offset) <= 600


def test_duplicates_are_identical_messages_back_to_back(chaos: tuple[Fleet, Any]) -> None:
    fleet, sent = chaos
    repeats = sum(1 for (_, a), (_, b) in pairwise(sent) if a == b)
    assert repeats == count(fleet, "duplicate")


def test_malformed_messages_are_rejected_by_ingest(chaos: tuple[Fleet, Any]) -> None:
    fleet, sent = chaos
    later = T0 + timedelta(days=1)  # skewed clocks ahead are not what this counts
    rejected = Counter[str]()
    for (_, message), (_, following) in zip(sent, [*sent[1:], (T0, None)], strict=True):
        if message == following:
            continue  # a duplicate: judge it once
        route = route_topic(message.topic)
        decoded = decode_position(route.device_id, message.topic, message.payload, later,
                                  1 << 20)
        for rejection in decoded.rejections:
            rejected[rejection.reason] += 1
    kinds = Counter(r["kind"] for r in fleet.truth.of_type("malformed"))
    assert sum(rejected.values()) == sum(kinds.values())
    assert set(kinds) == {"not_json", "truncated", "missing_lat", "lat_out_of_range", "bad_ts"}


def test_offline_periods_end_in_one_shuffled_batch(chaos: tuple[Fleet, Any]) -> None:
    fleet, sent = chaos
    periods = fleet.truth.of_type("offline")
    batches = [b for _, m in sent if isinstance(b := _json(m.payload), list)]
    arrays = [m for (_, m), (_, after) in zip(sent, [*sent[1:], (T0, None)], strict=True)
              if m.payload.startswith(b"[") and m != after]  # a duplicate counts once
    garbled = sum(1 for r in fleet.truth.of_type("malformed") if r["kind"] == "not_json")
    assert 0 <= len(periods) - len(arrays) <= garbled
    assert sum(p["buffered"] for p in periods) >= len(periods) * 2
    shuffled = [b for b in batches if len(b) >= 4 and [x["seq"] for x in b] != sorted(
        x["seq"] for x in b)]
    assert len(shuffled) > len([b for b in batches if len(b) >= 4]) // 2
    for period in periods:
        start, end = datetime.fromisoformat(period["ts"]), datetime.fromisoformat(period["end"])
        assert 20 <= (end - start).total_seconds() <= 120 + INTERVAL


def test_reboots_restart_the_sequence(chaos: tuple[Fleet, Any]) -> None:
    fleet, sent = chaos
    fixes: dict[str, dict[str, int]] = defaultdict(dict)
    for _, message in sent:
        body = _json(message.payload)
        for fix in body if isinstance(body, list) else [body]:
            if isinstance(fix, dict) and isinstance(fix.get("seq"), int) and _iso(fix.get("ts")):
                fixes[route_topic(message.topic).device_id][str(fix["ts"])] = fix["seq"]
    resets = 0
    for by_ts in fixes.values():
        seqs = [by_ts[ts] for ts in sorted(by_ts)]
        resets += sum(1 for a, b in pairwise(seqs) if b <= a)
    reboots = count(fleet, "reboot")
    # not quite all show: two reboots in a row make one reset, one before the first fix none
    assert 0.95 * reboots <= resets <= reboots


def test_faults_off_means_clean_output() -> None:
    fleet = Fleet(20, seed=11)
    for k in range(100):
        for message in fleet.tick(T0 + timedelta(seconds=k)):
            assert isinstance(json.loads(message.payload), dict)
    assert not fleet.truth.of_type("offline", "duplicate", "malformed", "reboot", "clock_skew")


def _iso(value: Any) -> bool:
    return isinstance(value, str) and value[:2] == "20"


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None
