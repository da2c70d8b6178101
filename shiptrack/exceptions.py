"""Exceptions: which events open one, which event resolves it, and what a customer sees.

This table is the one place the pairing lives. The exceptions queue
(``GET /api/v1/exceptions``) builds its SQL from it (``shiptrack.db.queries.events``),
and the dashboards get it from ``/config.json`` (so the browser never guesses from type
names: ``*_resolved`` is not an exception, it ends one).

Every exception of a shipment, whoever raised it (a detector, a scan, a carrier, a
dispatcher), is a ``shipment.exception`` event (``data``: ``kind``, ``code``, ``reason``,
``source``), ended by a later ``shipment.exception_cleared`` of that shipment whose
``data.cleared`` names the same ``kind``, or, for the watches a final status ends
(``shiptrack.shipments.CLEARED_WHEN_FINAL``), by a final ``shipment.milestone``. A
detector's own event (``sensor.excursion`` ...) stands beside it and is not listed twice:
the detectors' events count only where they concern no shipment (a device offline with
nothing on board). ``shipment.at_risk`` is an exception (code ``delayed``) until
``shipment.at_risk_cleared`` or a final status.

An exception not resolved is *open* until a dispatcher acknowledges it (then
*acknowledged*); resolution wins over acknowledgement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from shiptrack import events as ev
from shiptrack.shipments import CLEARED_WHEN_FINAL, EXCEPTION_CODES, FINAL

State = Literal["open", "acknowledged", "resolved"]
STATES: tuple[State, ...] = ("open", "acknowledged", "resolved")

EXCEPTION_ACKNOWLEDGED = "exception.acknowledged"

# The exception codes a customer may be told about. The others are detections for the
# dispatcher (a driver's legal rest is a "long stop", a tracker that lost coverage is
# "offline"), not facts about the parcel.
CUSTOMER_CODES = frozenset((
    "delayed", "lost", "damaged", "address_issue", "refused", "customs_hold", "weather",
))


@dataclass(frozen=True, slots=True)
class Resolver:
    type: str
    same: tuple[str, ...]  # columns equal in both: "device_id", "shipment_id"
    data_in: tuple[str, frozenset[str]] | None = None  # later.data[key] is one of these
    clears_kind: bool = False  # later.data.cleared names the start's data.kind
    when_kind_in: frozenset[str] | None = None  # only for starts whose data.kind is here


@dataclass(frozen=True, slots=True)
class Kind:
    start: str
    code: str  # the SPEC code it is reported as (shipment.exception: its data.code)
    resolvers: tuple[Resolver, ...]
    without_shipment: bool = False  # only starts of no shipment (else shipment.exception)


FINAL_MILESTONE = Resolver(ev.SHIPMENT_MILESTONE, ("shipment_id",), ("kind", FINAL))
DEVICE_ONLY = ("device_id", "shipment_id")

KINDS: dict[str, Kind] = {k.start: k for k in (
    Kind(ev.SHIPMENT_EXCEPTION, "other", (
        Resolver(ev.SHIPMENT_EXCEPTION_CLEARED, ("shipment_id",), clears_kind=True),
        Resolver(ev.SHIPMENT_MILESTONE, ("shipment_id",), ("kind", FINAL),
                 when_kind_in=frozenset(CLEARED_WHEN_FINAL)),
    )),
    Kind("shipment.at_risk", "delayed",
         (Resolver("shipment.at_risk_cleared", ("shipment_id",)), FINAL_MILESTONE)),
    Kind(ev.DEVICE_OFFLINE, "offline", (Resolver(ev.DEVICE_ONLINE, DEVICE_ONLY),),
         without_shipment=True),
    Kind(ev.LONG_STOP, "long_stop", (Resolver(ev.LONG_STOP_RESOLVED, DEVICE_ONLY),),
         without_shipment=True),
)}


def is_exception(event: dict[str, Any]) -> bool:
    kind = KINDS.get(str(event.get("type")))
    return kind is not None and not (kind.without_shipment and event.get("shipment_id"))


def _data(event: dict[str, Any]) -> dict[str, Any]:
    data = event.get("data")
    return data if isinstance(data, dict) else {}


def _matches(r: Resolver, start: dict[str, Any], later: dict[str, Any]) -> bool:
    sd, ld = _data(start), _data(later)
    if r.type != later.get("type") or any(start.get(c) != later.get(c) for c in r.same):
        return False
    if r.when_kind_in is not None and sd.get("kind") not in r.when_kind_in:
        return False
    if r.data_in is not None and ld.get(r.data_in[0]) not in r.data_in[1]:
        return False
    if r.clears_kind:
        cleared = ld.get("cleared")
        return isinstance(cleared, list) and any(
            isinstance(c, dict) and c.get("kind") == sd.get("kind") for c in cleared)
    return True


def resolves(start: dict[str, Any], later: dict[str, Any]) -> bool:
    """Whether ``later`` (an event after ``start``) resolves the exception ``start``."""
    kind = KINDS.get(str(start.get("type")))
    return kind is not None and is_exception(start) and any(
        _matches(r, start, later) for r in kind.resolvers)


def exception_code(event: dict[str, Any]) -> str:
    """The SPEC code of an exception event (``shipment.exception`` carries its own)."""
    kind = KINDS.get(str(event.get("type")))
    if kind is None:
        return "other"
    if kind.start == ev.SHIPMENT_EXCEPTION:
        data = _data(event)
        given = data.get("code") or data.get("exception_code")
        return given if given in EXCEPTION_CODES else "other"
    return kind.code


def state_of(resolved: bool, acknowledged: bool) -> State:
    return "resolved" if resolved else "acknowledged" if acknowledged else "open"


def public_pairing() -> dict[str, Any]:
    """The pairing for the dashboards (``/config.json``)."""
    return {
        "kinds": {k.start: {"code": k.code, "resolved_by": sorted({r.type for r in k.resolvers})}
                  for k in KINDS.values()},
        "acknowledged": EXCEPTION_ACKNOWLEDGED,
        "customer_codes": sorted(CUSTOMER_CODES),
    }
