from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shiptrack.owntracks import decode_owntracks

NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)

# what the OwnTracks iOS/Android apps publish (recorder's documentation examples)
APP_LOCATION = {
    "_type": "location", "acc": 13, "alt": 45, "batt": 74, "bs": 1, "conn": "w",
    "created_at": 1795683000, "lat": 48.8566, "lon": 2.3522, "m": 1, "t": "u",
    "tid": "jj", "tst": 1795683000, "vac": 2, "vel": 36, "cog": 90,
}


def test_location_maps_units_and_keeps_other_fields() -> None:
    out = decode_owntracks("owntracks.jane.phone", "owntracks/jane/phone",
                           json.dumps(APP_LOCATION).encode(), NOW, 1 << 18)
    assert out.rejections == []
    [fix] = out.fixes
    assert fix.device_id == "owntracks.jane.phone"
    assert fix.ts == datetime.fromtimestamp(1795683000, UTC)
    assert fix.speed == pytest.approx(10.0)  # 36 km/h
    assert fix.battery == pytest.approx(0.74)
    assert (fix.heading, fix.accuracy, fix.alt) == (90, 13, 45)
    assert fix.attrs is not None and fix.attrs["tid"] == "jj" and fix.attrs["conn"] == "w"


@pytest.mark.parametrize("kind", ["lwt", "transition", "waypoint", "card", "status"])
def test_other_types_are_ignored_without_error(kind: str) -> None:
    payload = json.dumps({"_type": kind, "tst": 1795683000}).encode()
    out = decode_owntracks("owntracks.a.b", "owntracks/a/b", payload, NOW, 1 << 18)
    assert out.fixes == [] and out.rejections == []


def test_array_of_http_mode_messages_and_a_bad_location() -> None:
    bad = dict(APP_LOCATION, lat=123)
    payload = json.dumps([APP_LOCATION, {"_type": "lwt"}, bad]).encode()
    out = decode_owntracks("owntracks.a.b", "owntracks/a/b", payload, NOW, 1 << 18)
    assert len(out.fixes) == 1
    assert [r.reason for r in out.rejections] == ["out_of_range"]


def test_location_without_tst_is_rejected() -> None:
    payload = json.dumps({"_type": "location", "lat": 1, "lon": 2}).encode()
    out = decode_owntracks("owntracks.a.b", "owntracks/a/b", payload, NOW, 1 << 18)
    assert [r.reason for r in out.rejections] == ["missing_field"]
