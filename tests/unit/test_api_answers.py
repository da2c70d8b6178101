"""api/errors.py: the one mapping of the domain's errors to HTTP answers."""

from __future__ import annotations

from api.broker_admin import BrokerAdminError
from api.errors import answer
from shiptrack.carriers.polling import PollError
from shiptrack.errors import StorageError
from shiptrack.geofences import GeofenceError
from shiptrack.notify.subscription import SubscriptionError
from shiptrack.shipments import ShipmentError


def test_the_nearest_class_decides_the_answer() -> None:
    assert answer(ShipmentError("x")) == (422, "invalid")
    assert answer(SubscriptionError("x")) == (422, "invalid")
    assert answer(GeofenceError("x")) == (422, "invalid_geometry")
    assert answer(BrokerAdminError("x")) == (503, "unavailable")
    assert answer(StorageError("x")) == (503, "unavailable")


def test_an_unmapped_error_is_internal() -> None:
    assert answer(PollError("x")) == (500, "internal")
