"""Exceptions: which events open one, which event resolves it, and what a customer sees.

This table is the one place the pairing lives. The exceptions queue
(``GET /api/v1/exceptions``) builds its SQL from it, and the dashboards get it from
``/config.json`` (so the browser never guesses from type names: ``*_resolved`` is not an
exception, it ends one).

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

import re
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


def resolver_types() -> frozenset[str]:
    return frozenset(r.type for k in KINDS.values() for r in k.resolvers)


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


# ---- SQL, built from the table ---------------------------------------------------------

_LITERAL = re.compile(r"^[a-z0-9_.:]+$")


def _lit(value: str) -> str:
    if not _LITERAL.match(value):
        raise ValueError(value)
    return f"'{value}'"


def _in(values: frozenset[str]) -> str:
    return "(" + ", ".join(_lit(v) for v in sorted(values)) + ")"


def _conditions(kind: Kind, r: Resolver, s: str, x: str) -> list[str]:
    conds = [f"{s}.type = {_lit(kind.start)}", f"{x}.type = {_lit(r.type)}",
             f"{x}.seq > {s}.seq"]
    for column in r.same:
        if column not in ("device_id", "shipment_id"):
            raise ValueError(column)
        conds.append(f"{x}.{column} IS NOT DISTINCT FROM {s}.{column}")
    if r.when_kind_in is not None:
        conds.append(f"{s}.data ->> 'kind' IN {_in(r.when_kind_in)}")
    if r.data_in is not None:
        conds.append(f"{x}.data ->> {_lit(r.data_in[0])} IN {_in(r.data_in[1])}")
    if r.clears_kind:
        conds.append(f"{x}.data -> 'cleared' @> jsonb_build_array("
                     f"jsonb_build_object('kind', {s}.data ->> 'kind'))")
    return conds


def resolution_sql(start: str = "e", later: str = "r") -> str:
    """A ``LATERAL`` subquery body: the first event resolving the exception ``start``.

    One ``UNION ALL`` branch per (kind, resolver), each guarded by the start's type so
    only the branches of that kind run; each is an index walk on
    ``events (type, shipment_id|device_id, seq)``."""
    branches = [
        f"(SELECT {later}.id, {later}.type, {later}.ts, {later}.seq FROM events {later} "
        f"WHERE {' AND '.join(_conditions(kind, r, start, later))} "
        f"ORDER BY {later}.seq LIMIT 1)"
        for kind in KINDS.values() for r in kind.resolvers]
    return "SELECT * FROM (" + " UNION ALL ".join(branches) + ") x ORDER BY seq LIMIT 1"


def start_sql(alias: str = "e") -> str:
    """The condition on ``events`` that selects exceptions."""
    parts = []
    for kind in KINDS.values():
        cond = f"{alias}.type = {_lit(kind.start)}"
        if kind.without_shipment:
            cond += f" AND {alias}.shipment_id IS NULL"
        parts.append(f"({cond})")
    return "(" + " OR ".join(parts) + ")"


def public_pairing() -> dict[str, Any]:
    """The pairing for the dashboards (``/config.json``)."""
    return {
        "kinds": {k.start: {"code": k.code, "resolved_by": sorted({r.type for r in k.resolvers})}
                  for k in KINDS.values()},
        "acknowledged": EXCEPTION_ACKNOWLEDGED,
        "customer_codes": sorted(CUSTOMER_CODES),
    }
