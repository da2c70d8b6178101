"""Each rule and wire shape defined once: the milestone event, the position's fields and
the event's, derived from their one definition wherever they are listed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec

from api.schemas import Position
from api.tracking_schemas import EventOut
from shiptrack.db.queries import positions as pq
from shiptrack.db.queries import tracking as q
from shiptrack.events import EVENT_FIELDS, Event, encode_events, event_id
from shiptrack.fix import LAST_POSITION_FIELDS, POSITION_FIELDS, SHOWN_FIELDS, Fix
from shiptrack.shipments import milestone_event

T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)


def test_the_milestone_event_and_its_id() -> None:
    e = milestone_event("shp_1", "R1", "d1", "hub", T0, "scan", "in_transit",
                        {"scanner_id": "dock-3", "lat": 1.0, "lon": 2.0})
    assert e.type == "shipment.milestone"
    assert e.data == {"kind": "hub", "source": "scan", "reference": "R1",
                      "status": "in_transit", "scanner_id": "dock-3", "lat": 1.0, "lon": 2.0}
    # the id: the kind and the scanner (two scanners at one time: two milestones)
    assert e.id == event_id("shipment.milestone", T0, "d1", "shp_1", None, "hubdock-3")
    other = milestone_event("shp_1", "R1", "d1", "hub", T0, "scan", "in_transit",
                            {"scanner_id": "dock-4"})
    assert other.id != e.id
    created = milestone_event("shp_1", "R1", None, "created", T0, "api", "created")
    assert created.id == event_id("shipment.milestone", T0, None, "shp_1", None, "created")
    assert created.data == {"kind": "created", "source": "api", "reference": "R1",
                            "status": "created"}


def test_the_created_milestone_keeps_its_id() -> None:
    # the id POST /api/v1/shipments gave the created milestone when it built the event by
    # hand (issue 12): a stored created event keeps de-duplicating against a replay
    e = milestone_event("shp_1", "R1", "d1", "created", T0, "api", "created")
    assert e.id == "evt_01M8BMRD80MXX624EW1T716943"


def test_the_position_fields_come_from_fix() -> None:
    names = tuple(f.name for f in msgspec.structs.fields(Fix))
    assert names == POSITION_FIELDS
    assert pq.POSITION_COLUMNS.split(", ") == list(names)
    assert pq.POSITION_TYPES == ["text", "timestamptz", "float8", "float8", "float8",
                                 "float8", "float8", "float8", "float8", "int8", "jsonb",
                                 "jsonb", "bool"]
    assert pq.DEVICE_COLUMNS == ("device_id, last_ts, lat, lon, speed, heading, accuracy, "
                                 "alt, battery, sensors, attrs")
    types = [pq.POSITION_TYPES[names.index(n)] for n in LAST_POSITION_FIELDS]
    assert types == pq.DEVICE_TYPES
    assert list(Position.model_fields) == [n for n in SHOWN_FIELDS if n != "device_id"]
    schema: dict[str, Any] = Position.model_json_schema()
    assert schema["required"] == ["ts", "lat", "lon"]
    assert schema["properties"]["speed"]["description"] == "m/s"


def test_the_event_shape_comes_from_event() -> None:
    assert EVENT_FIELDS == ("id", "type", "ts", "device_id", "shipment_id", "geofence_id",
                            "data")
    assert list(EventOut.model_fields) == [*EVENT_FIELDS, "created_at"]
    assert EventOut.model_json_schema()["required"] == [*EVENT_FIELDS, "created_at"]
    assert f"INSERT INTO events ({', '.join(EVENT_FIELDS)})" in q.INSERT_EVENTS
    e = Event(id="evt_1", type="geofence.enter", ts=T0, device_id="d1", data={"a": 1})
    params = q.event_params([e])
    assert len(params) == len(EVENT_FIELDS) == q.INSERT_EVENTS.count("%s")
    assert params[0] == ["evt_1"] and params[2] == [T0]
    assert msgspec.json.decode(encode_events([e])) == [{
        "id": "evt_1", "type": "geofence.enter", "ts": "2026-11-26T10:00:00Z",
        "device_id": "d1", "shipment_id": None, "geofence_id": None, "data": {"a": 1}}]


def test_the_rest_scan_kinds_are_the_scan_kinds() -> None:
    from typing import get_args

    from api.tracking_schemas import ScanIn
    from shiptrack.shipments import SCAN_KINDS

    assert get_args(ScanIn.model_fields["kind"].annotation) == tuple(SCAN_KINDS)


def test_the_decoder_validates_every_optional_number_of_a_fix() -> None:
    from shiptrack.decode import KNOWN_NUMERIC, RANGES
    from shiptrack.fix import sql_type

    numbers = [n for n in POSITION_FIELDS if sql_type(n) == "float8" and n not in ("lat", "lon")]
    assert list(KNOWN_NUMERIC) == numbers and list(RANGES) == numbers


def test_the_api_lists_event_columns_from_event() -> None:
    from shiptrack.db.queries import events as event_sql
    from shiptrack.db.queries import webhooks as webhook_sql

    assert event_sql.COLUMNS.split(", ") == ["seq", *EVENT_FIELDS, "created_at"]
    # a webhook's body: the event's JSON, each field under its own name
    body = webhook_sql.EVENTS_AFTER.split("jsonb_build_object(", 1)[1].split(")::text", 1)[0]
    assert body.split(", ") == [x for n in EVENT_FIELDS for x in (f"'{n}'", n)]


def test_the_api_lists_position_fields_from_fix() -> None:
    from api.live_feed import position_text
    from api.routes_devices import device_from_row
    from shiptrack.db.queries import devices as device_sql

    columns = device_sql.SELECT.removeprefix("SELECT ").split(" FROM devices")[0]
    assert columns.split(", ") == [*pq.DEVICE_FIELDS, "first_seen_at", "last_received_at"]
    row = {"device_id": "d1", "last_ts": T0, "lat": 1.0, "lon": 2.0, "speed": 3.0,
           "heading": 4.0, "accuracy": 5.0, "alt": 6.0, "battery": 0.5, "sensors": {"t": 1},
           "attrs": {"a": 1}, "first_seen_at": T0, "last_received_at": T0}
    assert set(row) == {*pq.DEVICE_FIELDS, "first_seen_at", "last_received_at"}
    device = device_from_row(row)
    assert device.last_position is not None
    assert device.last_position.model_dump() == {
        "ts": T0, "lat": 1.0, "lon": 2.0, "speed": 3.0, "heading": 4.0, "accuracy": 5.0,
        "alt": 6.0, "battery": 0.5, "sensors": {"t": 1}}
    shown = msgspec.json.decode(position_text(
        {n: 1.0 for n in POSITION_FIELDS} | {"device_id": "d1", "attrs": {"a": 1}}))
    assert list(shown) == ["type", *SHOWN_FIELDS]


def test_a_point_is_the_same_fields_everywhere() -> None:
    from api.schemas import TrackPoint
    from api.tracking_schemas import LastPosition
    from shiptrack.db.queries import devices as device_sql
    from shiptrack.db.queries import shipments as shipment_sql
    from shiptrack.fix import POINT_FIELDS

    assert set(POINT_FIELDS) <= set(SHOWN_FIELDS)
    assert list(TrackPoint.model_fields) == list(POINT_FIELDS)
    assert list(LastPosition.model_fields) == list(POINT_FIELDS)
    assert pq.DEVICE_POINT == "last_ts AS ts, lat, lon, speed, heading"
    assert f"SELECT {pq.POINT_COLUMNS} FROM positions" in device_sql.TRACK_RAW
    assert f"SELECT device_id, {pq.DEVICE_POINT} FROM devices" in device_sql.SNAPSHOT
    for mode in ("timescale", "plain"):
        assert device_sql.track_bucketed(mode).count(pq.POINT_COLUMNS) == 2
    assert ("coalesce(fin.ts, d.last_ts) AS pos_ts, coalesce(fin.lat, d.lat) AS pos_lat"
            in shipment_sql.SELECT)
    assert "d.last_ts, d.lat, d.lon, d.speed, d.heading" in shipment_sql.TRACKED
