"""The hub's fan-out: filters, conflation, bounded queues, stalls and closing."""

from __future__ import annotations

import asyncio

import pytest

from api.hub import CLOSE_GOING_AWAY, CLOSE_TOO_SLOW, Filter, Hub
from api.live_feed import dispatch
from shiptrack.topics import LIVE_ETA, LIVE_EVENTS, LIVE_POSITIONS


def test_filter_bbox_devices_and_antimeridian() -> None:
    assert Filter().everything and Filter().wants("a", 1, 2)
    box = Filter(bbox=(10, 40, 20, 50))
    assert box.wants("a", 45, 15) and not box.wants("a", 45, 25) and not box.wants("a", 55, 15)
    across = Filter(bbox=(170, -10, -170, 10))
    assert across.wants("a", 0, 175) and across.wants("a", 0, -175)
    assert not across.wants("a", 0, 0)
    some = Filter(devices=frozenset({"a"}))
    assert some.wants("a", 0, 0) and not some.wants("b", 0, 0)
    assert some.wants_other("a", None) and not some.wants_other("b", None)
    assert some.wants_other(None, "s1")  # events of no device reach device filters
    one = Filter(devices=frozenset({"a"}), shipment="s1")
    assert one.wants_other("a", "s1") and not one.wants_other("a", "s2")
    assert not one.wants_other("a", None)  # a tracking stream: its shipment's messages only


async def test_conflation_keeps_latest_position_per_device_and_every_event() -> None:
    hub = Hub(queue_limit=100)
    sub = hub.add()
    for i in range(5):
        hub.publish_position("a", 1.0, 1.0, f"a{i}")
        hub.publish_position("b", 1.0, 1.0, f"b{i}")
    hub.publish_other("e1")
    hub.publish_other("e2")
    assert sub.wake.is_set()
    assert sub.drain() == ["e1", "e2", "a4", "b4"]
    assert sub.drain() == [] and not sub.wake.is_set()


async def test_filtered_subscribers_only_get_theirs() -> None:
    hub = Hub()
    everyone, narrow = hub.add(), hub.add(Filter(devices=frozenset({"a"})))
    tracking = hub.add(Filter(devices=frozenset({"a"}), shipment="s1"))
    hub.publish_position("b", 0, 0, "pb")
    hub.publish_position("a", 0, 0, "pa")
    hub.publish_other("eta-s2", "a", "s2")
    hub.publish_other("eta-s1", "a", "s1")
    hub.publish_other("ev-b", "b", None)
    assert everyone.drain() == ["eta-s2", "eta-s1", "ev-b", "pb", "pa"]
    assert narrow.drain() == ["eta-s2", "eta-s1", "pa"]
    assert tracking.drain() == ["eta-s1", "pa"]


async def test_event_queue_overflow_closes_with_4008() -> None:
    hub = Hub(queue_limit=10)
    sub = hub.add()
    for i in range(10):
        hub.publish_other(f"e{i}")
    assert sub.close_code is None
    hub.publish_other("one too many")
    assert sub.close_code == CLOSE_TOO_SLOW and "overflow" in sub.close_reason
    assert len(sub.others) == 10  # nothing more is queued for a closing client


async def test_stalled_subscriber_is_closed_and_a_blocked_send_cancelled() -> None:
    hub = Hub(stall_s=5)
    slow, fine = hub.add(), hub.add()
    hub.publish_position("a", 0, 0, "x")
    fine.drain()
    start = slow.behind_since
    assert start is not None
    assert hub.check_stalled(start + 4) == 0
    assert hub.check_stalled(start + 6) == 1
    assert slow.close_code == CLOSE_TOO_SLOW and fine.close_code is None

    blocked = hub.add()
    blocked.sender = asyncio.create_task(asyncio.sleep(60))
    blocked.sending_since = start  # a batch in flight for too long, nothing pending
    assert hub.check_stalled(start + 6) == 1
    await asyncio.sleep(0)
    assert blocked.sender.cancelled()


async def test_close_all_marks_everyone_going_away() -> None:
    hub = Hub()
    subs = [hub.add() for _ in range(3)]
    await hub.close_all(wait=0.1)  # no stream task removes them here: waits 0.1 s
    assert all(s.close_code == CLOSE_GOING_AWAY for s in subs)
    assert hub.add().close_code == CLOSE_GOING_AWAY  # late arrivals too


async def test_live_feed_encodes_once_for_all_subscribers() -> None:
    hub = Hub()
    a, b = hub.add(), hub.add()
    hub.add(Filter(devices=frozenset({"other"})))
    payload = b'[{"device_id": "d1", "ts": "2026-11-26T10:00:00Z", "lat": 1, "lon": 2}]'
    assert dispatch(hub, "p/" + LIVE_POSITIONS, payload, "p/") == 1
    (ta,), (tb,) = a.drain(), b.drain()
    assert ta is tb  # the very same str object: encoded once
    assert ta == ('{"type":"position","device_id":"d1","ts":"2026-11-26T10:00:00Z",'
                  '"lat":1,"lon":2}')
    pokes: list[int] = []
    hub.on_event = lambda: pokes.append(1)
    dispatch(hub, LIVE_EVENTS, b'{"id": 7, "type": "geofence.enter", "device_id": "d1",'
                               b' "shipment_id": 3}')
    dispatch(hub, LIVE_ETA, b'{"shipment_id": 3, "device_id": "d1", "eta": "x"}')
    assert a.drain() == ['{"type":"event","event":{"id":7,"type":"geofence.enter",'
                         '"device_id":"d1","shipment_id":3}}',
                         '{"shipment_id":3,"device_id":"d1","eta":"x","type":"eta"}']
    assert pokes == [1]
    assert dispatch(hub, LIVE_POSITIONS, b"not json") == 0


@pytest.mark.parametrize("n", [0, 3])
async def test_push_front_puts_snapshot_first(n: int) -> None:
    hub = Hub()
    sub = hub.add()
    for i in range(n):
        hub.publish_other(f"e{i}")
    sub.push_front("snapshot")
    assert sub.drain()[0] == "snapshot"
