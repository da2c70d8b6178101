"""Exceptions: which events open one, which event resolves it, and what a customer sees.

This table is the one place the pairing lives. The exceptions queue
(``GET /api/v1/exceptions``) builds its SQL from it, and the dashboards get it from
``/config.json`` (so the browser never guesses from type names: ``*_resolved`` is not an
exception, it ends one).

An exception is an event whose type is a key of ``KINDS``. It is *resolved* by the first
later event (by ``seq``) of one of its resolvers' types that concerns the same thing:
the same values of the resolver's ``same`` columns (``device_id``, ``shipment_id``, or a
``data`` key such as ``data.sensor``), and, when the resolver names ``data``, with those
data values (a ``shipment.milestone`` of kind ``delivered`` ends the watches that a
delivery ends). An exception that is not resolved is *open* until a dispatcher
acknowledges it (then *acknowledged*); resolution wins over acknowledgement.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from shiptrack import events as ev

State = Literal["open", "acknowledged", "resolved"]
STATES: tuple[State, ...] = ("open", "acknowledged", "resolved")

EXCEPTION_ACKNOWLEDGED = "exception.acknowledged"

# The SPEC's exception codes, and the ones a customer may be told about. The others are
# detections for the dispatcher (a driver's legal rest is a "long stop", a tracker that
# lost coverage is "offline"), not facts about the parcel.
EXCEPTION_CODES = (
    "delayed", "lost", "damaged", "address_issue", "refused", "customs_hold", "weather",
    "sensor_excursion", "offline", "route_deviation", "long_stop", "other",
)
CUSTOMER_CODES = frozenset((
    "delayed", "lost", "damaged", "address_issue", "refused", "customs_hold", "weather",
))


@dataclass(frozen=True, slots=True)
class Resolver:
    type: str
    same: tuple[str, ...]  # "device_id", "shipment_id", or "data.<key>"
    data: dict[str, str] = field(default_factory=dict)  # data values the resolver must have


@dataclass(frozen=True, slots=True)
class Kind:
    start: str
    code: str  # the SPEC exception code it is reported as
    resolvers: tuple[Resolver, ...]


DEVICE_AND_SHIPMENT = ("device_id", "shipment_id")
DELIVERED = Resolver(ev.SHIPMENT_MILESTONE, ("shipment_id",), {"kind": "delivered"})

KINDS: dict[str, Kind] = {k.start: k for k in (
    Kind(ev.DEVICE_OFFLINE, "offline",
         (Resolver(ev.DEVICE_ONLINE, DEVICE_AND_SHIPMENT), DELIVERED)),
    Kind(ev.SENSOR_EXCURSION, "sensor_excursion",
         (Resolver(ev.SENSOR_EXCURSION_RESOLVED, (*DEVICE_AND_SHIPMENT, "data.sensor")),)),
    Kind(ev.ROUTE_DEVIATION, "route_deviation",
         (Resolver(ev.ROUTE_DEVIATION_RESOLVED, DEVICE_AND_SHIPMENT), DELIVERED)),
    Kind(ev.LONG_STOP, "long_stop",
         (Resolver(ev.LONG_STOP_RESOLVED, DEVICE_AND_SHIPMENT), DELIVERED)),
    Kind(ev.SHIPMENT_EXCEPTION, "other",
         (Resolver(ev.SHIPMENT_EXCEPTION_CLEARED, ("shipment_id",)),)),
    Kind("shipment.at_risk", "delayed",
         (Resolver("shipment.at_risk_cleared", ("shipment_id",)), DELIVERED)),
)}


def is_exception(event_type: str) -> bool:
    return event_type in KINDS


def resolver_types() -> frozenset[str]:
    return frozenset(r.type for k in KINDS.values() for r in k.resolvers)


def _value(event: dict[str, Any], column: str) -> Any:
    if column.startswith("data."):
        return (event.get("data") or {}).get(column[5:])
    return event.get(column)


def resolves(start: dict[str, Any], later: dict[str, Any]) -> bool:
    """Whether ``later`` (an event after ``start``) resolves the exception ``start``."""
    kind = KINDS.get(str(start.get("type")))
    if kind is None:
        return False
    data = later.get("data") or {}
    return any(
        r.type == later.get("type")
        and all(_value(start, c) == _value(later, c) for c in r.same)
        and all(str(data.get(k)) == v for k, v in r.data.items())
        for r in kind.resolvers)


def exception_code(event: dict[str, Any]) -> str:
    """The SPEC code of an exception event (a manual one may name its own)."""
    kind = KINDS.get(str(event.get("type")))
    if kind is None:
        return "other"
    given = (event.get("data") or {}).get("exception_code")
    return given if kind.code == "other" and given in EXCEPTION_CODES else kind.code


def state_of(resolved: bool, acknowledged: bool) -> State:
    return "resolved" if resolved else "acknowledged" if acknowledged else "open"


def _column_sql(column: str, alias: str) -> str:
    if column.startswith("data."):
        key = column[5:]
        if not key.isidentifier():
            raise ValueError(column)
        return f"{alias}.data ->> '{key}'"
    if column not in ("device_id", "shipment_id"):
        raise ValueError(column)
    return f"{alias}.{column}"


def resolution_sql(start: str = "e", later: str = "r") -> str:
    """A ``LATERAL`` subquery body: the first event resolving the exception ``start``.

    One ``UNION ALL`` branch per (kind, resolver), each guarded by the start's type so
    the planner runs only the branches of that kind; every branch is an index walk on
    ``events (type, ..., seq)``."""
    branches = []
    for kind in KINDS.values():
        for r in kind.resolvers:
            conds = [f"{start}.type = '{kind.start}'", f"{later}.type = '{r.type}'",
                     f"{later}.seq > {start}.seq"]
            conds += [f"{_column_sql(c, later)} IS NOT DISTINCT FROM {_column_sql(c, start)}"
                      for c in r.same]
            conds += [f"{later}.data ->> '{k}' = '{v}'" for k, v in r.data.items()]
            branches.append(
                f"(SELECT {later}.id, {later}.type, {later}.ts, {later}.seq FROM events "
                f"{later} WHERE {' AND '.join(conds)} ORDER BY {later}.seq LIMIT 1)")
    return "SELECT * FROM (" + " UNION ALL ".join(branches) + ") x ORDER BY seq LIMIT 1"


def public_pairing() -> dict[str, Any]:
    """The pairing for the dashboards (``/config.json``)."""
    return {
        "kinds": {k.start: {"code": k.code, "resolved_by": sorted({r.type for r in k.resolvers})}
                  for k in KINDS.values()},
        "acknowledged": EXCEPTION_ACKNOWLEDGED,
        "customer_codes": sorted(CUSTOMER_CODES),
    }
