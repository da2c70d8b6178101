"""Named SQL of tracking (``shipments``' status and ETA fields, ``shipment_milestones``,
``shipment_exceptions``, ``events``, ``device_tracking``, ``tracking_versions``), shared by
ingest (sync psycopg) and the API (async): the writes that must behave the same whoever
makes them, and what ingest loads before a batch.

- A milestone is recorded only if the shipment's status may move to it
  (``shiptrack.shipments.TRANSITIONS``: ``after`` is the list of statuses it may follow,
  from ``preceding``) or, for a hub scan, the shipment is not final; and never twice for
  the same time, nor a status again at or before a time it was already reached (a late or
  replayed signal). A status milestone is dated no earlier than the previous status
  milestone (``created`` aside). All in one statement with the status change, so that
  ingest, the API and carrier updates racing on one shipment can never break the rules;
  ``RETURNING`` says whether it happened (and so whether its event is stored) and its time.
- Nothing older than the shipment's ``created_at`` is a milestone of it: its timeline
  starts with ``created``.
- Events are inserted in the given order (``seq``) and a duplicate ``id`` is dropped.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg.types.json import Jsonb

from shiptrack.events import EVENT_FIELDS, Event
from shiptrack.shipments import FINAL, HUB, preceding

# SQL list of the final statuses, from the one definition
FINAL_SQL = ", ".join(f"'{s}'" for s in sorted(FINAL))

# A timeline's order: by time, ``created`` first among equals, then as recorded.
MILESTONE_ORDER = "m.ts, m.kind <> 'created', m.id"

RECORD_MILESTONE = """
WITH prev AS (
    SELECT max(m.ts) AS ts FROM shipment_milestones m
     WHERE m.shipment_id = %(shipment_id)s AND m.kind NOT IN ('created', 'hub')
), moved AS (
    UPDATE shipments
       SET status = CASE WHEN %(is_status)s THEN %(kind)s ELSE status END,
           delivered_at = CASE WHEN %(is_status)s AND %(kind)s = 'delivered'
                               THEN greatest(%(ts)s, (SELECT ts FROM prev))
                               ELSE delivered_at END,
           updated_at = now()
     WHERE id = %(shipment_id)s
       AND created_at <= %(ts)s
       AND status = ANY(%(after)s::text[])
       AND NOT EXISTS (SELECT 1 FROM shipment_milestones m
                        WHERE m.shipment_id = %(shipment_id)s AND m.kind = %(kind)s
                          AND (m.ts = %(ts)s OR (%(is_status)s AND m.ts > %(ts)s)))
    RETURNING id
)
INSERT INTO shipment_milestones (shipment_id, kind, ts, source, data)
SELECT id, %(kind)s,
       CASE WHEN %(is_status)s THEN greatest(%(ts)s, (SELECT ts FROM prev)) ELSE %(ts)s END,
       %(source)s, %(data)s FROM moved
ON CONFLICT DO NOTHING
RETURNING shipment_id, ts
"""


def milestone_params(shipment_id: str, kind: str, ts: datetime, source: str,
                     data: dict[str, Any]) -> dict[str, Any]:
    """The parameters of ``RECORD_MILESTONE`` (the transition rule comes from here)."""
    return {"shipment_id": shipment_id, "kind": kind, "ts": ts, "source": source,
            "data": Jsonb(data), "is_status": kind != HUB, "after": preceding(kind)}


# events: the columns are the fields of ``shiptrack.events.Event`` (its one JSON shape)
_EVENT_CASTS = {"ts": "timestamptz", "data": "jsonb"}
_EVENT_COLUMNS = ", ".join(EVENT_FIELDS)
INSERT_EVENTS = f"""
INSERT INTO events ({_EVENT_COLUMNS})
SELECT {", ".join("e." + n for n in EVENT_FIELDS)}
FROM unnest({", ".join(f"%s::{_EVENT_CASTS.get(n, 'text')}[]" for n in EVENT_FIELDS)})
     WITH ORDINALITY AS e ({_EVENT_COLUMNS}, n)
ORDER BY e.n
ON CONFLICT (id) DO NOTHING
RETURNING id
"""


def event_params(events: list[Event]) -> tuple[list[Any], ...]:
    """The parameters of ``INSERT_EVENTS``: one array per field."""
    return tuple([Jsonb(e.data) if n == "data" else getattr(e, n) for e in events]
                 for n in EVENT_FIELDS)


OPEN_EXCEPTION = """
INSERT INTO shipment_exceptions (shipment_id, kind, since, reason, data, code)
SELECT %(shipment_id)s, %(kind)s, %(since)s, %(reason)s, %(data)s, %(code)s
WHERE EXISTS (SELECT 1 FROM shipments WHERE id = %(shipment_id)s)
ON CONFLICT (shipment_id, kind) DO UPDATE SET reason = excluded.reason, data = excluded.data,
                                              code = excluded.code
"""

CLOSE_EXCEPTION = """
DELETE FROM shipment_exceptions WHERE shipment_id = %(shipment_id)s AND kind = %(kind)s
"""
# the open exceptions of these kinds of one shipment (a final status clears some)
CLOSE_EXCEPTIONS = "DELETE FROM shipment_exceptions WHERE shipment_id = %s AND kind = ANY(%s)"

BUMP_VERSION = "SELECT shiptrack_bump_version(%s)"
VERSIONS = "SELECT name, version FROM tracking_versions"

LOAD_FENCES = "SELECT id, name, geometry, properties, updated_at FROM geofences ORDER BY id"

LOAD_ACTIVE_SHIPMENTS = """
SELECT s.id, s.reference, s.device_id, s.status, s.origin, s.destination, s.route,
       s.route_corridor_m, s.sensor_limits,
       (SELECT max(m.ts) FROM shipment_milestones m
         WHERE m.shipment_id = s.id AND m.kind NOT IN ('created', 'hub')) AS last_ts,
       s.promised_by, s.at_risk, s.eta_announced,
       s.eta_first, s.created_at
FROM shipments s
WHERE s.status NOT IN (""" + FINAL_SQL + """) AND s.device_id IS NOT NULL
ORDER BY s.id
"""

# The ETA stage's fields of the shipments it estimated, in one statement (ids sorted, so
# that concurrent writers lock rows in the same order); a delivered shipment keeps its last.
UPDATE_ETAS = """
UPDATE shipments s
   SET eta = u.eta, eta_low = u.eta_low, eta_high = u.eta_high, remaining_m = u.remaining_m,
       at_risk = u.at_risk, eta_announced = u.announced,
       late_probability = u.late_probability, eta_first = coalesce(s.eta_first, u.eta)
  FROM unnest(%s::text[], %s::timestamptz[], %s::timestamptz[], %s::timestamptz[],
              %s::float8[], %s::bool[], %s::timestamptz[], %s::float8[])
       AS u (id, eta, eta_low, eta_high, remaining_m, at_risk, announced, late_probability)
 WHERE s.id = u.id AND s.status NOT IN (""" + FINAL_SQL + """)
"""

KNOWN_REFERENCES = "SELECT reference FROM shipments WHERE reference = ANY(%s)"
# the shipment a scan names, locked for the scan's milestones (the API's door)
SHIPMENT_BY_REFERENCE = """
SELECT id, reference, device_id, status FROM shipments WHERE reference = %s FOR UPDATE
"""

LOAD_STATES = "SELECT device_id, state FROM device_tracking WHERE device_id = ANY(%s)"

UPSERT_STATE = """
INSERT INTO device_tracking (device_id, state, live, offline, updated_at)
VALUES (%s, %s::jsonb, %s, %s, now())
ON CONFLICT (device_id) DO UPDATE SET
    state = excluded.state, live = excluded.live, offline = excluded.offline,
    updated_at = now()
"""

OFFLINE_CANDIDATES = """
SELECT t.device_id, d.last_ts
FROM device_tracking t JOIN devices d USING (device_id)
WHERE t.live AND NOT t.offline AND d.last_ts < %s
ORDER BY t.device_id
LIMIT %s
"""

# Precomputed corridors (migration 0006), read only for what is not cached yet.
LOAD_FENCE_WKB = "SELECT id, shape_wkb FROM geofences WHERE id = ANY(%s) AND shape_wkb IS NOT NULL"
LOAD_ROUTE_WKB = """
SELECT id, route_corridor_wkb FROM shipments
WHERE id = ANY(%s) AND route_corridor_wkb IS NOT NULL
"""
