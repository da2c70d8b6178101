"""Named SQL of shipments for the API: a shipment's state in one query (its row,
milestones, open exceptions and the device's position), the public tracking view, and
the writes of ``/api/v1/shipments``. The rules shared with ingest (recording a
milestone, opening an exception, the final statuses) are ``shiptrack.db.queries.tracking``'s.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from psycopg import sql

from shiptrack.db.queries.positions import DEVICE_COLUMN
from shiptrack.db.queries.tracking import FINAL_SQL, MILESTONE_ORDER
from shiptrack.fix import POINT_FIELDS

# the shipment's position (shiptrack.fix.POINT_FIELDS) as pos_*: at delivery (fin) once
# delivered, else the device's last (d)
_POSITION = ", ".join(f"coalesce(fin.{n}, d.{DEVICE_COLUMN[n]}) AS pos_{n}"
                      for n in POINT_FIELDS)
_AT_DELIVERY = ", ".join(f"p.{n}" for n in POINT_FIELDS)
_DEVICE_POINT = ", ".join(f"d.{DEVICE_COLUMN[n]}" for n in POINT_FIELDS)

# A shipment's state: its row, milestones, open exceptions and the device's last position
# (while not delivered; once delivered, its position at delivery). Add a WHERE.
SELECT = f"""
SELECT s.id, s.reference, s.device_id, s.status, s.tracking_token_hash, s.origin, s.destination,
       s.promised_by, s.route, s.route_corridor_m, s.sensor_limits, s.eta, s.eta_low,
       s.eta_high, s.remaining_m, s.at_risk, s.delivered_at, s.created_at, s.updated_at,
       s.late_probability, s.eta_first,
       s.carrier, s.carrier_tracking_number, s.carrier_eta,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('ts', m.ts, 'kind', m.kind,
                'source', m.source, 'data', m.data)
                ORDER BY {MILESTONE_ORDER}), '[]'::jsonb)
          FROM shipment_milestones m WHERE m.shipment_id = s.id) AS milestones,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('kind', x.kind, 'reason', x.reason,
                'since', x.since, 'data', x.data, 'code', x.code) ORDER BY x.since, x.kind),
                '[]'::jsonb)
          FROM shipment_exceptions x WHERE x.shipment_id = s.id) AS exceptions,
       {_POSITION}
FROM shipments s
LEFT JOIN devices d ON d.device_id = s.device_id AND s.status NOT IN ({FINAL_SQL})
LEFT JOIN LATERAL (
    SELECT {_AT_DELIVERY} FROM positions p
    WHERE p.device_id = s.device_id AND p.ts <= s.delivered_at AND NOT p.outlier
    ORDER BY p.ts DESC LIMIT 1
) fin ON s.status = 'delivered'
"""
BY_ID = SELECT + " WHERE s.id = %s"

# the columns ``GET /api/v1/shipments`` filters on by equality
FILTER_COLUMNS = ("s.status", "s.at_risk", "s.device_id", "s.carrier")
_HAS_EXCEPTION = "EXISTS (SELECT 1 FROM shipment_exceptions x WHERE x.shipment_id = s.id)"
_HAS_EXCEPTION_CODE = ("EXISTS (SELECT 1 FROM shipment_exceptions x WHERE x.shipment_id = s.id"
                       " AND x.code = %s)")


def listing(*, before_id: str | None, equal: dict[str, Any], exception: bool | None,
            exception_code: str | None, limit: int) -> tuple[str, list[Any]]:
    """Shipments newest first (``id`` descending) before the cursor's ``before_id``, with
    ``equal`` (``FILTER_COLUMNS`` to values, None: any), with or without an open
    exception, with an open exception of a code; ``limit`` rows."""
    where: list[str] = ["true"]
    params: list[Any] = []
    if before_id is not None:
        where.append("s.id < %s")
        params.append(before_id)
    for column, value in equal.items():
        if column not in FILTER_COLUMNS:
            raise ValueError(column)
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    if exception is not None:
        where.append(("" if exception else "NOT ") + _HAS_EXCEPTION)
    if exception_code is not None:
        where.append(_HAS_EXCEPTION_CODE)
        params.append(exception_code)
    params.append(limit)
    return SELECT + " WHERE " + " AND ".join(where) + " ORDER BY s.id DESC LIMIT %s", params


GEOFENCE_EXISTS = "SELECT 1 FROM geofences WHERE id = %s"

INSERT = (
    "INSERT INTO shipments (id, reference, device_id, tracking_token, origin,"
    " destination, promised_by, route, route_corridor_m, sensor_limits, carrier,"
    " carrier_tracking_number, route_corridor_wkb, created_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (reference) DO NOTHING RETURNING id, reference, device_id, status")
INSERT_CREATED = ("INSERT INTO shipment_milestones (shipment_id, kind, ts, source)"
                  " VALUES (%s, 'created', %s, %s)")

ROUTE_OF = "SELECT route, route_corridor_m FROM shipments WHERE id = %s"
LOCK = ("SELECT id, reference, device_id, status, origin IS NULL AS no_origin"
        " FROM shipments WHERE id = %s FOR UPDATE")

# the columns a PATCH may set (besides status and exceptions)
PATCHABLE = frozenset(("promised_by", "route", "route_corridor_m", "sensor_limits", "carrier",
                       "carrier_tracking_number", "route_corridor_wkb"))


def update(columns: Iterable[str]) -> sql.Composed:
    """``UPDATE shipments SET <column> = %s, ..., updated_at = now() WHERE id = %s``."""
    names = list(columns)
    if not names or not set(names) <= PATCHABLE:
        raise ValueError(names)
    sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in names)
    return sql.SQL("UPDATE shipments SET {}, updated_at = now() WHERE id = %s").format(sets)


CLEAR_EXCEPTIONS = ("DELETE FROM shipment_exceptions WHERE shipment_id = %s"
                    " RETURNING kind, reason, code")

# The public view of a tracking token (``GET /api/v1/track/{token}``): looked up by the
# token's digest, hidden once final for longer than %(keep)s.
TRACKED = f"""
SELECT s.id, s.reference, s.status, s.device_id, s.origin, s.destination, s.promised_by,
       s.eta, s.eta_low, s.eta_high, s.remaining_m, s.at_risk, s.delivered_at,
       s.late_probability, s.eta_first,
       s.carrier, s.carrier_tracking_number, s.carrier_eta,
       (SELECT x.code FROM shipment_exceptions x WHERE x.shipment_id = s.id
         ORDER BY x.since DESC, x.kind DESC LIMIT 1) AS exception_code,
       og.geometry AS origin_geometry, dg.geometry AS destination_geometry,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('ts', m.ts, 'kind', m.kind,
                                                     'source', m.source)
                                  ORDER BY {MILESTONE_ORDER}), '[]'::jsonb)
          FROM shipment_milestones m WHERE m.shipment_id = s.id) AS milestones,
       (SELECT min(m.ts) FROM shipment_milestones m
         WHERE m.shipment_id = s.id AND m.kind = 'picked_up') AS picked_up_at,
       (SELECT string_agg(x.reason, '; ' ORDER BY x.since)
          FROM shipment_exceptions x WHERE x.shipment_id = s.id) AS exception_reason,
       {_DEVICE_POINT}
FROM shipments s
LEFT JOIN geofences og ON og.id = s.origin ->> 'geofence_id'
LEFT JOIN geofences dg ON dg.id = s.destination ->> 'geofence_id'
LEFT JOIN devices d ON d.device_id = s.device_id
WHERE s.tracking_token_hash = sha256(%(token)s::bytea)
  AND (s.status NOT IN (""" + FINAL_SQL + """)
       OR coalesce(s.delivered_at, s.updated_at) > now() - %(keep)s)
"""
