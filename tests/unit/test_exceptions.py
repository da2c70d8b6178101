"""The pairing of exceptions and the events that resolve them (shiptrack.exceptions)."""

from __future__ import annotations

from typing import Any

import pytest

from shiptrack import exceptions as exc
from shiptrack.db.queries import events as event_sql
from shiptrack.shipments import EXCEPTION_CODES


def event(type_: str, device: str | None = "d1", shipment: str | None = "s1",
          **data: Any) -> dict[str, Any]:
    return {"type": type_, "device_id": device, "shipment_id": shipment, "data": data}


HOT = event("shipment.exception", kind="sensor.excursion:temperature_c",
            code="sensor_excursion", source="device")
OFF = event("shipment.exception", kind="device.offline", code="offline", source="device")


@pytest.mark.parametrize(("start", "later", "expected"), [
    (HOT, event("shipment.exception_cleared",
                cleared=[{"kind": "sensor.excursion:temperature_c"}]), True),
    (HOT, event("shipment.exception_cleared", cleared=[{"kind": "sensor.excursion:shock_g"}]),
     False),
    (HOT, event("shipment.exception_cleared", shipment="s2",
                cleared=[{"kind": "sensor.excursion:temperature_c"}]), False),
    (HOT, event("shipment.milestone", kind="delivered"), False),  # a record for the receiver
    (OFF, event("shipment.milestone", kind="delivered"), True),  # delivery ends the watch
    (OFF, event("shipment.milestone", kind="cancelled"), True),
    (OFF, event("shipment.milestone", kind="in_transit"), False),
    (event("shipment.exception", kind="manual", code="damaged"),
     event("shipment.exception_cleared", device=None,
           cleared=[{"kind": "manual"}, {"kind": "device.offline"}]), True),
    (event("shipment.at_risk"), event("shipment.at_risk_cleared"), True),
    (event("shipment.at_risk"), event("shipment.milestone", kind="delivered"), True),
    (event("device.offline", shipment=None), event("device.online", shipment=None), True),
    (event("device.offline", shipment=None), event("device.online", device="d2",
                                                   shipment=None), False),
    (event("device.long_stop", shipment=None),
     event("device.long_stop_resolved", shipment=None), True),
    # a detector's own event of a shipment is beside its shipment.exception: not listed
    (event("device.offline"), event("device.online"), False),
    (event("device.online"), event("device.offline"), False),
])
def test_resolves(start: dict[str, Any], later: dict[str, Any], expected: bool) -> None:
    assert exc.resolves(start, later) is expected


def test_what_counts_as_an_exception() -> None:
    assert exc.is_exception(HOT)
    assert exc.is_exception(event("device.offline", shipment=None))
    assert not exc.is_exception(event("device.offline"))  # its shipment.exception counts
    assert not exc.is_exception(event("sensor.excursion"))
    for type_ in {r.type for k in exc.KINDS.values() for r in k.resolvers}:
        assert not exc.is_exception(event(type_, shipment=None)), type_


def test_codes_and_states() -> None:
    assert exc.exception_code(HOT) == "sensor_excursion"
    assert exc.exception_code(event("device.long_stop", shipment=None)) == "long_stop"
    assert exc.exception_code(event("shipment.at_risk")) == "delayed"
    assert exc.exception_code(event("shipment.exception")) == "other"
    assert exc.exception_code(event("shipment.exception", code="bogus")) == "other"
    assert {k.code for k in exc.KINDS.values()} <= set(EXCEPTION_CODES)
    assert set(EXCEPTION_CODES) >= exc.CUSTOMER_CODES
    assert "long_stop" not in exc.CUSTOMER_CODES and "offline" not in exc.CUSTOMER_CODES
    assert exc.state_of(True, True) == "resolved"
    assert exc.state_of(False, True) == "acknowledged"
    assert exc.state_of(False, False) == "open"


def test_public_pairing_matches_the_table() -> None:
    pairing = exc.public_pairing()
    assert pairing["kinds"]["shipment.exception"]["resolved_by"] == [
        "shipment.exception_cleared", "shipment.milestone"]
    assert set(pairing["kinds"]) == set(exc.KINDS)
    assert "shipment_id IS NULL" in event_sql.start_sql()
