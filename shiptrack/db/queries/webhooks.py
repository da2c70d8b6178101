"""Named SQL of webhooks (``/api/v1/webhooks``) and their outbox (``api/webhooks.py``):
the cursor over the event log, the deliveries made from it, their claims and answers."""

from __future__ import annotations

from shiptrack.events import EVENT_FIELDS

COLUMNS = "id, url, event_types, description, created_at"

EVENTS_PRESENT = "SELECT to_regclass('events') IS NOT NULL AS present"
# a new webhook starts after the newest event (when the events table exists)
_START_AFTER_NEWEST = "(SELECT coalesce(max(seq), 0) FROM events)"


def insert(events_present: bool) -> str:
    """A new webhook, its deliveries starting after the newest event."""
    start = _START_AFTER_NEWEST if events_present else "0"
    return (f"INSERT INTO webhooks (id, url, event_types, description, secret, start_seq)"
            f" VALUES (%s, %s, %s, %s, %s, {start}) RETURNING {COLUMNS}")


# for ``api.pagination.id_page``
SELECT_LIVE = f"SELECT {COLUMNS} FROM webhooks WHERE deleted_at IS NULL"
DELETE = "UPDATE webhooks SET deleted_at = now() WHERE id = %s AND deleted_at IS NULL"

# ---- the outbox ------------------------------------------------------------------------

EVENTS_TABLE = "SELECT to_regclass('events')"
INIT_CURSOR = ("INSERT INTO webhook_cursor (id, last_seq)"
               " SELECT true, coalesce(max(seq), 0) FROM events ON CONFLICT DO NOTHING")
LOCK_CURSOR = "SELECT last_seq FROM webhook_cursor FOR UPDATE"
MOVE_CURSOR = "UPDATE webhook_cursor SET last_seq = %s"
# the events after a seq, each with the body its deliveries send: the event's JSON, its
# fields those of shiptrack.events.Event
_BODY = ", ".join(f"'{n}', {n}" for n in EVENT_FIELDS)
EVENTS_AFTER = f"""
SELECT seq, id::text AS id, type, jsonb_build_object({_BODY})::text AS body
FROM events WHERE seq > %s ORDER BY seq LIMIT %s
"""
LIVE_HOOKS = "SELECT id, event_types, start_seq FROM webhooks WHERE deleted_at IS NULL"
INSERT_DELIVERY = ("INSERT INTO webhook_deliveries (webhook_id, event_id, event_seq, body)"
                   " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING")
# Due deliveries, at most %(per_hook)s of one webhook and %(n)s in all, leased for
# %(lease)s by moving next_attempt_at past it.
CLAIM = """
UPDATE webhook_deliveries d
SET attempts = d.attempts + 1, last_attempt_at = now(), next_attempt_at = now() + %(lease)s
FROM webhooks w
WHERE w.id = d.webhook_id AND d.id IN (
    SELECT q.id FROM webhook_deliveries q WHERE q.id IN (
        SELECT id FROM (
            SELECT x.id, row_number() OVER (PARTITION BY x.webhook_id
                                            ORDER BY x.next_attempt_at, x.id) AS n
            FROM webhook_deliveries x JOIN webhooks xw ON xw.id = x.webhook_id
            WHERE x.delivered_at IS NULL AND x.failed_at IS NULL
              AND x.next_attempt_at <= now() AND xw.deleted_at IS NULL) due
        WHERE n <= %(per_hook)s)
    ORDER BY q.next_attempt_at, q.id LIMIT %(n)s FOR UPDATE OF q SKIP LOCKED)
RETURNING d.id, d.webhook_id, d.event_id, d.event_seq, d.body, d.attempts,
          now() - d.created_at AS age, w.url, w.secret
"""
DONE = """
UPDATE webhook_deliveries SET delivered_at = now(), last_status = %s, last_error = NULL
WHERE id = %s
"""
RETRY = """
UPDATE webhook_deliveries SET last_status = %s, last_error = %s,
    next_attempt_at = now() + %s, failed_at = CASE WHEN %s THEN now() END
WHERE id = %s
"""
