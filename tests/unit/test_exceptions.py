"""The pairing of exceptions and the events that resolve them (shiptrack.exceptions)."""

from __future__ import annotations

from typing import Any

import pytest

from shiptrack import exceptions as exc


def event(type_: str, device: str | None = "d1", shipment: str | None = "s1",
          **data: Any) -> dict[str, Any]:
    return {"type": type_, "device_id": device, "shipment_id": shipment, "data": data}


@pytest.mark.parametrize(("start", "later", "expected"), [
    (event("device.offline"), event("device.online"), True),
    (event("device.offline"), event("device.online", shipment="s2"), False),
    (event("device.offline"), event("device.online", device="d2"), False),
    (event("device.offline", shipment=None), event("device.online", shipment=None), True),
    (event("device.offline"), event("shipment.milestone", device=None, kind="delivered"), True),
    (event("device.offline"), event("shipment.milestone", kind="in_transit"), False),
    (event("sensor.excursion", sensor="temperature_c"),
     event("sensor.excursion_resolved", sensor="temperature_c"), True),
    (event("sensor.excursion", sensor="temperature_c"),
     event("sensor.excursion_resolved", sensor="shock_g"), False),
    (event("sensor.excursion", sensor="t"),
     event("shipment.milestone", kind="delivered"), False),  # a record for the receiver
    (event("route.deviation"), event("route.deviation_resolved"), True),
    (event("device.long_stop"), event("device.long_stop_resolved"), True),
    (event("shipment.exception"), event("shipment.exception_cleared", device=None), True),
    (event("shipment.at_risk"), event("shipment.at_risk_cleared"), True),
    (event("device.offline"), event("route.deviation_resolved"), False),
    (event("device.online"), event("device.offline"), False),  # not an exception at all
])
def test_resolves(start: dict[str, Any], later: dict[str, Any], expected: bool) -> None:
    assert exc.resolves(start, later) is expected


def test_resolving_types_are_not_exceptions() -> None:
    for type_ in exc.resolver_types():
        assert not exc.is_exception(type_), type_
    assert exc.is_exception("sensor.excursion")
    assert not exc.is_exception("sensor.excursion_resolved")


def test_codes_and_states() -> None:
    assert exc.exception_code(event("device.long_stop")) == "long_stop"
    assert exc.exception_code(event("shipment.at_risk")) == "delayed"
    assert exc.exception_code(event("shipment.exception")) == "other"
    assert exc.exception_code(event("shipment.exception", exception_code="damaged")) \
        == "damaged"
    assert exc.exception_code(event("shipment.exception", exception_code="bogus")) == "other"
    assert {k.code for k in exc.KINDS.values()} <= set(exc.EXCEPTION_CODES)
    assert set(exc.EXCEPTION_CODES) >= exc.CUSTOMER_CODES
    assert "long_stop" not in exc.CUSTOMER_CODES and "offline" not in exc.CUSTOMER_CODES
    assert exc.state_of(True, True) == "resolved"
    assert exc.state_of(False, True) == "acknowledged"
    assert exc.state_of(False, False) == "open"


def test_public_pairing_matches_the_table() -> None:
    pairing = exc.public_pairing()
    assert pairing["kinds"]["device.offline"] == {
        "code": "offline", "resolved_by": ["device.online", "shipment.milestone"]}
    assert set(pairing["kinds"]) == set(exc.KINDS)
