"""Named SQL of the API's reads of the event log: ``GET /api/v1/events`` and the
exceptions queue (``/api/v1/exceptions``), whose SQL is built from the one table of
which events open and resolve an exception (``shiptrack.exceptions.KINDS``). Writing
events is ``shiptrack.db.queries.tracking.INSERT_EVENTS``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from shiptrack.events import EVENT_FIELDS
from shiptrack.exceptions import KINDS, Kind, Resolver

# an event's fields (shiptrack.events.Event, their one definition) with the log's own
COLUMNS = ", ".join(("seq", *EVENT_FIELDS, "created_at"))

# the filters of GET /api/v1/events, in the order their parameters are given
FILTERS = {"since": "ts >= %s", "until": "ts < %s", "device_id": "device_id = %s",
           "shipment_id": "shipment_id = %s", "geofence_id": "geofence_id = %s"}


def type_prefix(prefix: str) -> str:
    """The ``LIKE`` pattern of the types that start with ``prefix`` (taken literally)."""
    return prefix.replace("%", r"\%").replace("_", r"\_") + "%"


def types_clause(exact: list[str], patterns: list[str]) -> tuple[str, list[Any]]:
    """A type among ``exact`` or matching one of the ``LIKE`` ``patterns`` (none: any)."""
    clauses: list[str] = []
    params: list[Any] = []
    if exact:
        clauses.append("type = ANY(%s)")
        params.append(exact)
    if patterns:
        clauses.append("type LIKE ANY(%s)")
        params.append(patterns)
    return "(" + " OR ".join(clauses or ["true"]) + ")", params


def listing(*, ascending: bool, after_seq: int | None, filters: dict[str, Any],
            types: tuple[str, list[Any]] | None, limit: int) -> tuple[str, list[Any]]:
    """Events in ``seq`` order past the cursor's ``after_seq``, with ``filters``
    (``FILTERS`` names to values, None: any) and a ``types_clause``; ``limit`` rows."""
    where: list[str] = []
    params: list[Any] = []
    if after_seq is not None:
        where.append("seq > %s" if ascending else "seq < %s")
        params.append(after_seq)
    for name, value in filters.items():
        if value is not None:
            where.append(FILTERS[name])
            params.append(value)
    if types is not None:
        where.append(types[0])
        params.extend(types[1])
    query = f"SELECT {COLUMNS} FROM events"
    if where:
        query += " WHERE " + " AND ".join(where)
    query += f" ORDER BY seq {'ASC' if ascending else 'DESC'} LIMIT %s"
    params.append(limit)
    return query, params


# ---- the exceptions queue, built from shiptrack.exceptions.KINDS ------------------------

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


# A detector's exception also has the detector's own event (same shipment and time, the
# type its kind names): its data (sensor, value, distance, ...) is the detail shown.
DETECTION = """
SELECT d.type, d.data FROM events d
WHERE e.type = 'shipment.exception' AND e.data ->> 'source' = 'device'
  AND d.shipment_id = e.shipment_id AND d.ts = e.ts
  AND d.type = split_part(e.data ->> 'kind', ':', 1)
LIMIT 1
"""
# An exception with its resolution, acknowledgement and detection. Add ``AND`` clauses.
EXCEPTIONS = f"""
SELECT e.seq, e.id, e.type, e.ts, e.device_id, e.shipment_id, e.data, s.reference,
       res.id AS resolved_id, res.type AS resolved_type, res.ts AS resolved_ts,
       a.acknowledged_at, a.acknowledged_by, a.note,
       det.type AS detection_type, det.data AS detection_data
FROM events e
LEFT JOIN LATERAL ({resolution_sql()}) res ON true
LEFT JOIN LATERAL ({DETECTION}) det ON true
LEFT JOIN exception_acks a ON a.event_id = e.id
LEFT JOIN shipments s ON s.id = e.shipment_id
WHERE {start_sql()}
"""
EXCEPTION_BY_ID = EXCEPTIONS + " AND e.id = %(id)s"
# what each state of shiptrack.exceptions.STATES is, on the row of EXCEPTIONS
STATE_CONDITIONS = {
    "open": "(res.id IS NULL AND a.event_id IS NULL)",
    "acknowledged": "(res.id IS NULL AND a.event_id IS NOT NULL)",
    "resolved": "(res.id IS NOT NULL)",
}


def exception_listing(*, states: Iterable[str], before_seq: int | None,
                      equal: dict[str, Any], limit: int) -> tuple[str, dict[str, Any]]:
    """Exceptions newest first before the cursor's ``before_seq``, in any of ``states``
    (none: all), with ``equal`` (``device_id``, ``shipment_id`` to values, None: any);
    ``limit`` rows."""
    query = EXCEPTIONS
    params: dict[str, Any] = {"limit": limit}
    wanted = list(states)
    if wanted:
        query += " AND (" + " OR ".join(STATE_CONDITIONS[s] for s in wanted) + ")"
    if before_seq is not None:
        query += " AND e.seq < %(seq)s"
        params["seq"] = before_seq
    for column, value in equal.items():
        if column not in ("device_id", "shipment_id"):
            raise ValueError(column)
        if value is not None:
            query += f" AND e.{column} = %({column})s"
            params[column] = value
    return query + " ORDER BY e.seq DESC LIMIT %(limit)s", params


ACKNOWLEDGE = ("INSERT INTO exception_acks (event_id, acknowledged_by, token_id, note)"
               " VALUES (%s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING event_id")
