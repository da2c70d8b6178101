"""Named SQL of parcel carriers: the shipments of a tracking number, their checkpoints
(``carrier_checkpoints``), the carrier's ETA and exception, and the poller's schedule
(``carrier_poll_at``). Milestones and exceptions are recorded with
``shiptrack.db.queries.tracking``'s statements, as ingest records them."""

from __future__ import annotations

from shiptrack.db.queries.tracking import FINAL_SQL

# the shipments of a tracking number (locked), with the time their timeline starts
SHIPMENTS_OF_NUMBER = """
SELECT s.id, s.reference, s.device_id, s.status, s.carrier_eta,
       coalesce((SELECT min(m.ts) FROM shipment_milestones m
                  WHERE m.shipment_id = s.id AND m.kind = 'created'), s.created_at) AS created
FROM shipments s WHERE s.carrier_tracking_number = %s ORDER BY s.id FOR UPDATE OF s
"""
# a checkpoint seen for the first time answers a row
STORE_CHECKPOINT = """
INSERT INTO carrier_checkpoints (shipment_id, provider, key, ts, status, detail, message,
                                 location, mapped)
VALUES (%(shipment_id)s, %(provider)s, %(key)s, %(ts)s, %(status)s, %(detail)s, %(message)s,
        %(location)s, %(mapped)s)
ON CONFLICT DO NOTHING
RETURNING 1
"""
SET_ETA = "UPDATE shipments SET carrier_eta = %s, updated_at = now() WHERE id = %s"
# the carrier's exception of a shipment (kind %s) cleared
CLEAR_EXCEPTION = ("DELETE FROM shipment_exceptions WHERE shipment_id = %s"
                   " AND kind = %s RETURNING kind, reason, code")

# ---- the poller (api/carrier_poller.py) -------------------------------------------------

# Due shipments of the %(carriers)s (not final, never polled or due by %(now)s), at most
# %(limit)s, leased until %(lease)s.
CLAIM = """
UPDATE shipments s SET carrier_poll_at = %(lease)s
  FROM (SELECT id FROM shipments
         WHERE carrier = ANY(%(carriers)s) AND carrier_tracking_number IS NOT NULL
           AND status NOT IN (""" + FINAL_SQL + """)
           AND (carrier_poll_at IS NULL OR carrier_poll_at <= %(now)s)
         ORDER BY carrier_poll_at NULLS FIRST, id
         LIMIT %(limit)s FOR UPDATE SKIP LOCKED) due
 WHERE s.id = due.id
RETURNING s.id, s.carrier, s.carrier_tracking_number, s.status, s.carrier_poll_failures
"""
STATUS = "SELECT status FROM shipments WHERE id = %s"
POLLED = "UPDATE shipments SET carrier_poll_at = %s, carrier_poll_failures = 0 WHERE id = %s"
RESCHEDULE = ("UPDATE shipments SET carrier_poll_at = %s, carrier_poll_failures = %s"
              " WHERE id = %s")
