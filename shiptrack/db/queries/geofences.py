"""Named SQL of geofences for the API (``/api/v1/geofences``). Ingest's reads of them
are ``shiptrack.db.queries.tracking``'s."""

from __future__ import annotations

from shiptrack.db.queries.tracking import FINAL_SQL

COLUMNS = "id, geometry, properties, kind, created_at, updated_at"

INSERT = (f"INSERT INTO geofences (id, name, kind, geometry, properties, shape_wkb)"
          f" VALUES (%s, %s, %s, %s, %s, %s) RETURNING {COLUMNS}")
# for ``api.pagination.id_page``
SELECT_ALL = f"SELECT {COLUMNS} FROM geofences WHERE true"
BY_ID = f"SELECT {COLUMNS} FROM geofences WHERE id = %s"
REPLACE = (f"UPDATE geofences SET name = %s, kind = %s, geometry = %s, properties = %s,"
           f" shape_wkb = %s, updated_at = now() WHERE id = %s RETURNING {COLUMNS}")
DELETE = "DELETE FROM geofences WHERE id = %s"
# how many active shipments start or end in the geofence %(id)s
IN_USE = """
SELECT count(*) FROM shipments WHERE status NOT IN (""" + FINAL_SQL + """)
  AND (origin ->> 'geofence_id' = %(id)s OR destination ->> 'geofence_id' = %(id)s)
"""
