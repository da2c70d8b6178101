"""Shipment fields: places, sensor limits, statuses, ids, the tracking URL."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from api.routes_shipments import tracking_url
from shiptrack.events import event_id, make_event, new_id
from shiptrack.shipments import (
    RANK,
    STATUSES,
    Limit,
    Place,
    ShipmentError,
    limits_json,
    parse_limits,
    parse_place,
)


def test_places() -> None:
    assert parse_place({"lat": 52.5, "lon": 13.4}, "origin", 250.0) == Place(52.5, 13.4, 250.0)
    assert parse_place({"lat": 1, "lon": 2, "radius_m": 40}, "origin", 250.0).radius_m == 40
    assert parse_place({"geofence_id": "gf_1"}, "origin", 250.0).as_json() == {
        "geofence_id": "gf_1"}
    for obj, message in [
        ([1, 2], "origin must be an object"), ({"lat": 1}, "origin needs lat and lon"),
        ({"lat": True, "lon": 1}, "origin.lat must be a finite number"),
        ({"lat": 1, "lon": 181}, "origin.lon 181.0 is outside"),
        ({"lat": 1, "lon": 2, "radius_m": 0}, "radius_m must be > 0"),
        ({"geofence_id": "gf_1", "lat": 1}, "either a geofence_id or lat/lon"),
        ({"geofence_id": 7}, "must be a geofence id"),
    ]:
        with pytest.raises(ShipmentError, match=message):
            parse_place(obj, "origin", 250.0)


def test_sensor_limits() -> None:
    limits = parse_limits({"temperature_c": {"min": 2, "max": 8},
                           "shock_g": {"max": 4}, "humidity_pct": {"max": 80, "for_s": 30}},
                          600.0)
    assert limits["temperature_c"] == Limit("temperature_c", 2.0, 8.0, 600.0)
    assert limits["shock_g"].for_s == 0.0  # a shock counts at once
    assert limits["humidity_pct"].for_s == 30.0
    assert limits["temperature_c"].outside(8.5) and not limits["temperature_c"].outside(8.0)
    assert limits_json(limits)["shock_g"] == {"min": None, "max": 4.0, "for_s": 0.0}
    assert parse_limits(None, 600.0) == {}
    bad: list[tuple[Any, str]] = [
        ([], "sensor_limits must be an object"), ({"t c": {"max": 1}}, "sensor keys"),
        ({"t": {"max": 1, "unit": "C"}}, "min, max and/or for_s"), ({"t": {}}, "needs min or"),
        ({"t": {"min": 3, "max": 1}}, "min 3.0 is above max 1.0"),
        ({"t": {"max": 1, "for_s": -1}}, "for_s must be between"),
    ]
    for obj, message in bad:
        with pytest.raises(ShipmentError, match=message):
            parse_limits(obj, 600.0)


def test_statuses_are_ordered() -> None:
    assert [RANK[s] for s in STATUSES[:5]] == [0, 1, 2, 3, 4]
    assert STATUSES[0] == "created" and STATUSES[4] == "delivered"


def test_ids_sort_by_time_and_events_by_their_content() -> None:
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    assert new_id("shp", early) < new_id("shp", late)
    assert new_id("gf", early) != new_id("gf", early)  # random part
    assert len(new_id("shp")) == len("shp_") + 26
    a = make_event("geofence.enter", early, device_id="d1", geofence_id="gf_1")
    assert a.id == event_id("geofence.enter", early, "d1", None, "gf_1")
    assert a.id != event_id("geofence.exit", early, "d1", None, "gf_1")
    assert a.id < make_event("geofence.enter", late, device_id="d1").id


def test_tracking_url_absolute_when_a_public_url_is_set() -> None:
    def request(public_url: str | None) -> Any:
        settings = SimpleNamespace(public_url=public_url)
        return SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(settings=settings)))

    assert tracking_url(request(None), "tok") == "/t/tok"
    assert tracking_url(request("https://track.example.com/"), "tok") == \
        "https://track.example.com/t/tok"
