from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shiptrack.decode import Invalid, decode_position, parse_ts
from shiptrack.fix import Fix, Rejection

NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
TOPIC = "shiptrack/v1/devices/truck-1/position"
LIMIT = 256 * 1024


def decode(payload: object) -> tuple[list[Fix], list[Rejection]]:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    out = decode_position("truck-1", TOPIC, raw, NOW, LIMIT)
    return out.fixes, out.rejections


def test_full_spec_payload_is_decoded_with_units_and_attrs() -> None:
    fixes, rejected = decode({
        "ts": "2026-11-26T10:00:00.250Z", "lat": 52.52, "lon": 13.405, "speed": 12.5,
        "heading": 270.0, "accuracy": 6.0, "alt": 34.0, "battery": 0.87, "seq": 1234,
        "sensors": {"temperature_c": 4.2}, "vendor": {"fw": "1.2"}, "rssi": -70,
    })
    assert rejected == []
    [fix] = fixes
    assert fix.device_id == "truck-1"
    assert fix.ts == datetime(2026, 11, 26, 10, 0, 0, 250000, tzinfo=UTC)
    assert (fix.lat, fix.lon, fix.speed, fix.heading) == (52.52, 13.405, 12.5, 270.0)
    assert (fix.accuracy, fix.alt, fix.battery, fix.seq) == (6.0, 34.0, 0.87, 1234)
    assert fix.sensors == {"temperature_c": 4.2}
    assert fix.attrs == {"vendor": {"fw": "1.2"}, "rssi": -70}


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2026-11-26T09:00:00Z", datetime(2026, 11, 26, 9, tzinfo=UTC)),
        ("2026-11-26T11:00:00+02:00", datetime(2026, 11, 26, 9, tzinfo=UTC)),
        (1795683600, datetime(2026, 11, 26, 9, tzinfo=UTC)),
        (1795683600.5, datetime(2026, 11, 26, 9, 0, 0, 500000, tzinfo=UTC)),
        (1795683600500, datetime(2026, 11, 26, 9, 0, 0, 500000, tzinfo=UTC)),
    ],
)
def test_timestamp_forms(ts: object, expected: datetime) -> None:
    assert parse_ts(ts, NOW) == expected


@pytest.mark.parametrize(
    ("ts", "reason"),
    [
        ("yesterday", "bad_timestamp"),
        ("2026-11-26T09:00:00", "bad_timestamp"),  # no offset
        (True, "bad_timestamp"),
        (None, "bad_timestamp"),
        ("2026-11-26T10:06:00Z", "ts_in_future"),
        ("1999-12-31T23:59:59Z", "ts_too_old"),
        (1e30, "bad_timestamp"),
    ],
)
def test_bad_timestamps(ts: object, reason: str) -> None:
    with pytest.raises(Invalid) as info:
        parse_ts(ts, NOW)
    assert info.value.reason == reason


def test_four_minutes_ahead_is_accepted() -> None:
    assert parse_ts("2026-11-26T10:04:00Z", NOW).minute == 4


@pytest.mark.parametrize(
    ("fix", "reason"),
    [
        ({"lat": 1, "lon": 2}, "missing_field"),
        ({"ts": "2026-11-26T09:00:00Z", "lon": 2}, "missing_field"),
        ({"ts": "2026-11-26T09:00:00Z", "lat": "52", "lon": 2}, "bad_type"),
        ({"ts": "2026-11-26T09:00:00Z", "lat": 91, "lon": 2}, "out_of_range"),
        ({"ts": "2026-11-26T09:00:00Z", "lat": 1, "lon": -180.5}, "out_of_range"),
        ({"ts": "2026-11-26T09:00:00Z", "lat": True, "lon": 2}, "bad_type"),
        ([1, 2], "not_object"),
    ],
)
def test_bad_fix_is_rejected_with_reason(fix: object, reason: str) -> None:
    fixes, rejected = decode([fix])
    assert fixes == []
    assert [r.reason for r in rejected] == [reason]
    assert rejected[0].topic == TOPIC


def test_nan_and_infinity_are_rejected() -> None:
    raw = b'{"ts": "2026-11-26T09:00:00Z", "lat": NaN, "lon": 2}'
    _, rejected = decode(raw)
    assert [r.reason for r in rejected] == ["not_json"]
    raw = b'{"ts": "2026-11-26T09:00:00Z", "lat": 1e400, "lon": 2}'
    _, rejected = decode(raw)
    assert [r.reason for r in rejected] in (["not_json"], ["not_finite"], ["out_of_range"])


def test_a_bad_fix_in_a_batch_rejects_only_itself() -> None:
    fixes, rejected = decode([
        {"ts": "2026-11-26T09:00:02Z", "lat": 1, "lon": 2},
        {"ts": "2026-11-26T09:00:01Z", "lat": 100, "lon": 2},
        {"ts": "2026-11-26T09:00:00Z", "lat": 3, "lon": 4},
    ])
    assert [f.lat for f in fixes] == [1, 3]
    assert [r.reason for r in rejected] == ["out_of_range"]
    assert json.loads(rejected[0].payload)["lat"] == 100  # the item itself is kept


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"not json", "not_json"), (b'"a string"', "not_object"), (b"42", "not_object"),
     (b"", "not_json")],
)
def test_payloads_that_are_not_fixes(raw: bytes, reason: str) -> None:
    fixes, rejected = decode(raw)
    assert fixes == [] and [r.reason for r in rejected] == [reason]


def test_oversized_payload_is_rejected_and_truncated_for_storage() -> None:
    raw = b"[" + b" " * (LIMIT + 10) + b"]"
    _, rejected = decode(raw)
    assert [r.reason for r in rejected] == ["too_large"]
    assert len(rejected[0].payload) == 4096


@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_decoder(raw: bytes) -> None:
    out = decode_position("d", TOPIC, raw, NOW, LIMIT)
    assert len(out.fixes) + len(out.rejections) >= 0
    for f in out.fixes:
        assert -90 <= f.lat <= 90 and -180 <= f.lon <= 180


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["ts", "lat", "lon", "speed", "seq", "sensors", "x"]),
                      children, max_size=6),
    max_leaves=20,
)


@given(json_values)
def test_random_json_never_crashes_the_decoder(value: object) -> None:
    out = decode_position("d", TOPIC, json.dumps(value).encode(), NOW, LIMIT)
    assert all(r.reason for r in out.rejections)
