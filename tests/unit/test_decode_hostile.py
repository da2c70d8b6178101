"""Hostile input for the decoders (SPEC: no payload stops ingest): the total-function
property under fuzzing, and the named poison messages of issue #10 one by one."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shiptrack.decode import (
    MAX_ROWS_PER_MESSAGE,
    RANGES,
    Decoded,
    Invalid,
    decode_position,
    load_json,
)
from shiptrack.fix import Fix
from shiptrack.jsontree import MAX_DEPTH, depth_exceeds, fits_int8, has_nul
from shiptrack.owntracks import decode_owntracks
from shiptrack.scans import decode_scans

NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
LIMIT = 256 * 1024
GOOD_TS = "2026-11-26T09:00:00Z"

FIELDS = ["ts", "lat", "lon", "speed", "heading", "accuracy", "alt", "battery", "seq",
          "sensors", "_invalid", "x", "tst", "vel", "cog", "acc", "batt", "_type",
          "shipment_ref", "kind", "\x00"]
BAD_NUMBERS = ["NaN", "nan", "-NaN", "Infinity", "-Infinity", "inf", "+Infinity", "1e400",
               "-1e400", "1E999", "18446744073709551616", "-9223372036854775809",
               "1" + "0" * 400, "-" + "9" * 400, "1" + "0" * 4400, "0.1e-400", "1e308",
               "9223372036854775807"]


def text(value: Any) -> str:
    return json.dumps(value)


scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False,
                                                                   allow_infinity=False)
           | st.integers(min_value=-(10**400), max_value=10**400)
           | st.text(max_size=12) | st.sampled_from(["\x00", "a\x00b", GOOD_TS, "location",
                                                      "pickup", "\ud7ff\ue000"])).map(text)
raw_numbers = st.sampled_from(BAD_NUMBERS)


def nested(depth: int, inner: str) -> str:
    return "[" * depth + inner + "]" * depth


deep = st.builds(nested, st.integers(min_value=1, max_value=1200), scalars)
deep_objects = st.builds(lambda d, v: '{"a":' * d + v + "}" * d,
                         st.integers(min_value=1, max_value=1200), scalars)


def obj_text(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{text(k)}:{v}" for k, v in pairs) + "}"


fragments = st.recursive(
    scalars | raw_numbers | deep | deep_objects,
    lambda children: st.lists(children, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]")
    | st.lists(st.tuples(st.sampled_from(FIELDS) | st.text(max_size=5), children),
               max_size=5).map(obj_text),
    max_leaves=12,
)


@st.composite
def fix_texts(draw: st.DrawFn) -> str:
    """A fix whose required fields are usually good, with every type in every field."""
    pairs = [("ts", text(GOOD_TS)), ("lat", "1.5"), ("lon", "2.5"), ("_type", '"location"'),
             ("tst", "1795683000"), ("shipment_ref", '"R1"'), ("kind", '"hub"')]
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=6)):
        pairs = [p for p in pairs if p[0] != key] + [(key, draw(fragments))]
    return obj_text(pairs)


payloads = (st.lists(fix_texts(), min_size=1, max_size=5).map(lambda xs: "[" + ",".join(xs)
                                                               + "]")
            | fix_texts() | fragments).map(str.encode) | st.binary(max_size=200)


def assert_storable(fix: Fix) -> None:
    """What the store and the live republish need of an accepted fix."""
    assert -90 <= fix.lat <= 90 and -180 <= fix.lon <= 180
    assert fix.ts.tzinfo is not None
    for key, (lo, hi) in RANGES.items():
        value = getattr(fix, key)
        assert value is None or (math.isfinite(value) and lo <= value <= hi)
    assert fix.seq is None or fits_int8(fix.seq)
    for tree in (fix.sensors, fix.attrs):
        assert not has_nul(tree) and not depth_exceeds(tree, MAX_DEPTH)
        json.dumps(tree)  # what psycopg's Jsonb does
    for value in (fix.sensors or {}).values():
        if isinstance(value, int | float) and not isinstance(value, bool):
            assert math.isfinite(float(value))
    msgspec.json.encode(fix)  # the live republish


def assert_total(out: Decoded, payload: bytes) -> None:
    for fix in out.fixes:
        assert_storable(fix)
    assert all(r.reason and r.detail and r.count >= 1 for r in out.rejections)
    assert all(len(r.payload) <= 4096 for r in out.rejections)
    assert len(out.rejections) <= MAX_ROWS_PER_MESSAGE + 20
    try:
        load_json(payload, LIMIT)
    except Invalid:
        assert len(out.rejections) == 1 and not out.fixes  # one row when not JSON


FUZZ = settings(max_examples=120, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(payloads)
def test_position_decoding_is_total(payload: bytes) -> None:
    assert_total(decode_position("d", "t", payload, NOW, LIMIT), payload)


@FUZZ
@given(payloads)
def test_owntracks_decoding_is_total(payload: bytes) -> None:
    assert_total(decode_owntracks("owntracks.a.b", "t", payload, NOW, LIMIT), payload)


@FUZZ
@given(payloads)
def test_scan_decoding_is_total(payload: bytes) -> None:
    out = decode_scans("s1", "t", payload, NOW, LIMIT)
    for scan in out.scans:
        assert "\x00" not in scan.shipment_ref and scan.ts.tzinfo is not None
        assert scan.lat is None or -90 <= scan.lat <= 90
    assert len(out.rejections) <= MAX_ROWS_PER_MESSAGE + 20


# -- the poison messages of the issue, one by one ----------------------------------------

def fix(**extra: Any) -> dict[str, Any]:
    return {"ts": GOOD_TS, "lat": 1.0, "lon": 2.0, **extra}


def decode_raw(raw: bytes) -> Decoded:
    return decode_position("truck-1", "t", raw, NOW, LIMIT)


@pytest.mark.parametrize("field", ["ts", "lat", "lon"])
def test_a_400_digit_required_field_rejects_the_fix(field: str) -> None:
    raw = json.dumps(fix(**{field: 10**400})).encode()
    out = decode_raw(raw)
    assert out.fixes == []
    [row] = out.rejections
    assert row.reason == ("bad_timestamp" if field == "ts" else "out_of_range")
    assert "digits" in row.detail and len(row.detail) < 200


def test_an_owntracks_tst_of_400_digits_is_rejected() -> None:
    raw = json.dumps({"_type": "location", "lat": 1, "lon": 2, "tst": 10**400}).encode()
    out = decode_owntracks("owntracks.a.b", "t", raw, NOW, LIMIT)
    assert out.fixes == [] and [r.reason for r in out.rejections] == ["bad_timestamp"]


@pytest.mark.parametrize(("extra", "invalid"), [
    ({"seq": 18446744073709551616}, ["seq"]),
    ({"seq": "x"}, ["seq"]),
    ({"seq": True}, ["seq"]),
    ({"accuracy": -1}, ["accuracy"]),
    ({"battery": 250}, ["battery"]),
    ({"speed": 10**400, "heading": "north"}, ["heading", "speed"]),
    ({"alt": [1]}, ["alt"]),
    ({"sensors": [1]}, ["sensors"]),
    ({"sensors": {"temperature_c": 10**400, "shock_g": 0.5}}, ["sensors.temperature_c"]),
    ({"sensors": {"a\x00": 1}}, ["sensors.a\\u0000"]),
    ({"note": "nul \x00 inside"}, ["note"]),
    ({"k\x00": 1}, ["k\\u0000"]),
    ({"_invalid": "mine"}, ["_invalid"]),
])
def test_a_bad_optional_field_is_dropped_and_named(extra: dict[str, Any],
                                                   invalid: list[str]) -> None:
    out = decode_raw(json.dumps(fix(**extra, vendor="kept")).encode())
    assert out.rejections == []
    [stored] = out.fixes
    assert stored.attrs is not None and stored.attrs["_invalid"] == invalid
    assert stored.attrs["vendor"] == "kept"
    assert (stored.lat, stored.lon) == (1.0, 2.0)
    for key in ("seq", "accuracy", "battery", "speed", "heading", "alt"):
        if key in extra:
            assert getattr(stored, key) is None
    if "shock_g" in json.dumps(extra):
        assert stored.sensors == {"shock_g": 0.5}
    assert_storable(stored)


def test_owntracks_acc_minus_one_is_dropped_and_the_fix_stored() -> None:
    raw = json.dumps({"_type": "location", "lat": 1, "lon": 2, "tst": 1795683000, "acc": -1,
                      "vel": 10**400, "batt": 50}).encode()
    out = decode_owntracks("owntracks.a.b", "t", raw, NOW, LIMIT)
    [stored] = out.fixes
    assert stored.accuracy is None and stored.speed is None and stored.battery == 0.5
    assert stored.attrs is not None and stored.attrs["_invalid"] == ["accuracy", "speed"]


def test_valid_fix_has_no_invalid_list() -> None:
    [stored] = decode_raw(json.dumps(fix(seq=2**63 - 1, accuracy=0)).encode()).fixes
    assert stored.attrs is None and stored.seq == 2**63 - 1


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
def test_deep_nesting_is_one_dead_letter(depth: int) -> None:
    for raw in (nested(depth, "1"), json.dumps(fix())[:-1] + ', "x": ' + nested(depth, "1")
                + "}"):
        out = decode_raw(raw.encode())
        assert out.fixes == []
        assert [r.reason for r in out.rejections] == ["too_deep"]


def test_nesting_up_to_the_limit_is_kept() -> None:
    raw = json.dumps(fix())[:-1] + ', "x": ' + nested(MAX_DEPTH - 1, "1") + "}"
    [stored] = decode_raw(raw.encode()).fixes
    assert stored.attrs is not None and "x" in stored.attrs


@pytest.mark.parametrize("raw", [b"\xff\xfe", b'{"ts": "\xed\xa0\x80"}', b"\x00",
                                 b'{"lat": NaN}', b"[Infinity]", b'{"lat": 1e400}',
                                 b"1" + b"0" * 5000, b'"\\ud800"'])
def test_non_json_is_one_dead_letter(raw: bytes) -> None:
    out = decode_raw(raw)
    assert out.fixes == [] and [r.reason for r in out.rejections] == ["not_json"]


def test_an_array_of_numbers_is_one_dead_letter() -> None:
    raw = json.dumps([1] * 10_000).encode()
    out = decode_raw(raw)
    [row] = out.rejections
    assert (row.reason, row.count) == ("not_object", 10_000)


def test_many_bad_fixes_are_capped_with_counts_and_the_good_ones_kept() -> None:
    items = [fix(lat=100)] * 300 + [{"lat": 1, "lon": 1}] * 50 + [fix(), 7]
    out = decode_raw(json.dumps(items).encode())
    assert len(out.fixes) == 1
    rows = out.rejections
    assert len(rows) == MAX_ROWS_PER_MESSAGE + 3
    by_reason: dict[str, int] = {}
    for r in rows:
        by_reason[r.reason] = by_reason.get(r.reason, 0) + r.count
    assert by_reason == {"out_of_range": 300, "missing_field": 50, "not_object": 1}


def test_a_converter_bug_rejects_only_its_item() -> None:
    from shiptrack.decode import decode_items

    def convert(item: Any, now: datetime) -> Fix | None:
        if item.get("boom"):
            raise ZeroDivisionError("x")
        return Fix(device_id="d", ts=now, lat=0.0, lon=0.0)

    out = decode_items([{"boom": 1}, {}], "t", b"[]", NOW, convert)
    assert len(out.fixes) == 1
    [row] = out.rejections
    assert row.reason == "internal_error" and "ZeroDivisionError" in row.detail


def test_scan_poison() -> None:
    raw = json.dumps([{"ts": GOOD_TS, "shipment_ref": "R\x00", "kind": "hub"},
                      {"ts": GOOD_TS, "shipment_ref": "R", "kind": ["hub"]},
                      {"ts": GOOD_TS, "shipment_ref": "R", "kind": "hub", "lat": 10**400,
                       "lon": 1},
                      {"ts": 10**400, "shipment_ref": "R", "kind": "hub"}]).encode()
    out = decode_scans("s1", "t", raw, NOW, LIMIT)
    assert out.scans == []
    assert [r.reason for r in out.rejections] == ["bad_value", "bad_scan_kind",
                                                  "out_of_range", "bad_timestamp"]
