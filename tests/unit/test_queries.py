"""The named SQL's builders (shiptrack/db/queries/): the statements and parameters they
compose, and that they refuse what is not theirs to put in SQL."""

from __future__ import annotations

import pytest

from shiptrack import exceptions as exc
from shiptrack.db.queries import events as event_sql
from shiptrack.db.queries import paging
from shiptrack.db.queries import shipments as shipment_sql


def test_every_exception_state_has_its_condition() -> None:
    assert tuple(event_sql.STATE_CONDITIONS) == exc.STATES


def test_shipment_listing_keeps_the_filters_given_in_parameter_order() -> None:
    query, params = shipment_sql.listing(
        before_id="shp_9", equal={"s.status": "in_transit", "s.at_risk": None,
                                  "s.device_id": "truck-1", "s.carrier": None},
        exception=False, exception_code="lost", limit=11)
    assert query.startswith(shipment_sql.SELECT)
    where = query.removeprefix(shipment_sql.SELECT)
    assert where.startswith(" WHERE true AND s.id < %s AND s.status = %s AND s.device_id = %s"
                            " AND NOT EXISTS")
    assert where.endswith("AND x.code = %s) ORDER BY s.id DESC LIMIT %s")
    assert params == ["shp_9", "in_transit", "truck-1", "lost", 11]
    with pytest.raises(ValueError):
        shipment_sql.listing(before_id=None, equal={"s.id; --": 1}, exception=None,
                             exception_code=None, limit=1)


def test_shipment_update_names_its_columns_and_refuses_others() -> None:
    text = shipment_sql.update(["promised_by", "route"]).as_string(None)
    assert text == ('UPDATE shipments SET "promised_by" = %s, "route" = %s, '
                    'updated_at = now() WHERE id = %s')
    for bad in ([], ["status"], ["id = id; --"]):
        with pytest.raises(ValueError):
            shipment_sql.update(bad)


def test_event_listing_orders_and_pages_either_way() -> None:
    types = event_sql.types_clause(["geofence.enter"], [event_sql.type_prefix("shipment_.")])
    query, params = event_sql.listing(
        ascending=True, after_seq=41, filters={"since": "t0", "until": None,
                                               "device_id": "d1", "shipment_id": None,
                                               "geofence_id": None},
        types=types, limit=6)
    assert query == (f"SELECT {event_sql.COLUMNS} FROM events WHERE seq > %s AND ts >= %s"
                     " AND device_id = %s AND (type = ANY(%s) OR type LIKE ANY(%s))"
                     " ORDER BY seq ASC LIMIT %s")
    assert params == [41, "t0", "d1", ["geofence.enter"], [r"shipment\_.%"], 6]
    query, params = event_sql.listing(ascending=False, after_seq=None, filters={},
                                      types=None, limit=3)
    assert query.endswith("FROM events ORDER BY seq DESC LIMIT %s") and params == [3]


def test_exception_listing_ors_the_states() -> None:
    query, params = event_sql.exception_listing(
        states=["open", "resolved"], before_seq=7, equal={"device_id": None,
                                                          "shipment_id": "shp_1"}, limit=4)
    assert (" AND ((res.id IS NULL AND a.event_id IS NULL) OR (res.id IS NOT NULL))"
            " AND e.seq < %(seq)s AND e.shipment_id = %(shipment_id)s"
            " ORDER BY e.seq DESC LIMIT %(limit)s") in query
    assert params == {"limit": 4, "seq": 7, "shipment_id": "shp_1"}


def test_a_page_after_an_id() -> None:
    assert paging.after_id("SELECT id FROM t WHERE true") == (
        "SELECT id FROM t WHERE true AND id > %s ORDER BY id LIMIT %s")
