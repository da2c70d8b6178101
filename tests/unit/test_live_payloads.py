"""Ingest's live republish: every item, in order, in messages the broker takes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec

from ingest.pipeline import LIVE_MAX_BYTES, live_payloads
from shiptrack.fix import Fix

T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)


def encode(fixes: Sequence[Fix]) -> bytes:
    return msgspec.json.encode(fixes)


def test_a_small_batch_is_one_message() -> None:
    fixes = [Fix(device_id="d1", ts=T0, lat=1.0, lon=2.0)]
    assert list(live_payloads(fixes, encode)) == [encode(fixes)]


def test_a_large_batch_is_split_in_order_under_the_limit() -> None:
    fixes = [Fix(device_id=f"d{i}", ts=T0 + timedelta(seconds=i), lat=1.0, lon=2.0,
                 sensors={"note": "x" * 100}) for i in range(20_000)]
    assert len(encode(fixes)) > 4 * LIVE_MAX_BYTES  # what one message used to carry
    payloads = list(live_payloads(fixes, encode))
    assert all(len(p) <= LIVE_MAX_BYTES for p in payloads) and len(payloads) > 4
    back = [f for p in payloads for f in msgspec.json.decode(p, type=list[Fix])]
    assert back == fixes


def test_one_item_over_the_limit_goes_alone() -> None:
    big = Fix(device_id="d1", ts=T0, lat=1.0, lon=2.0, sensors={"blob": "x" * 2000})
    small = Fix(device_id="d2", ts=T0, lat=1.0, lon=2.0)
    assert list(live_payloads([big, small], encode, limit=1000)) == [encode([big]),
                                                                     encode([small])]
