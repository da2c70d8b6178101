"""Named SQL of notification subscriptions (``subscriptions``): stored for every door
they come in by, listed, confirmed, found by a link's token, and ended (deleted,
unsubscribed, not confirmed in time, bounced)."""

from __future__ import annotations

COLUMNS = ("id, shipment_id, channel, address, language, timezone, quiet_start, quiet_end,"
           " notify, state, source, failures, last_error, created_at, confirmed_at,"
           " ended_at, ended_reason")

COUNT_LIVE = ("SELECT count(*) AS n FROM subscriptions WHERE shipment_id = %s"
              " AND state IN ('pending', 'active')")
# a new subscription is told of the events after the newest one
INSERT = (f"INSERT INTO subscriptions (id, shipment_id, channel, address, language, timezone,"
          f" quiet_start, quiet_end, notify, state, source, secret, unsubscribe_token,"
          f" confirm_hash, start_seq)"
          f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
          f"         (SELECT coalesce(max(seq), 0) FROM events))"
          f" ON CONFLICT DO NOTHING RETURNING {COLUMNS}, secret")
PAGE = (f"SELECT {COLUMNS} FROM subscriptions WHERE shipment_id = %s"
        f" AND id > %s ORDER BY id LIMIT %s")
SHIPMENT_REFERENCE = "SELECT id, reference FROM shipments WHERE id = %s"

DELETE = ("UPDATE subscriptions SET state = 'ended', ended_at = now(), ended_reason ="
          " 'deleted' WHERE id = %s AND shipment_id = %s AND state IN ('pending', 'active')")
UNSUBSCRIBE = ("UPDATE subscriptions SET state = 'ended', ended_at = now(),"
               " ended_reason = 'unsubscribed' WHERE id = %s AND state IN ('pending', 'active')")
# sign-ups created before %s not confirmed: ended at %s
END_UNCONFIRMED = ("UPDATE subscriptions SET state = 'ended', ended_at = %s, ended_reason ="
                   " 'not confirmed' WHERE state = 'pending' AND created_at < %s RETURNING id")
BOUNCE = ("UPDATE subscriptions SET state = 'bounced', ended_at = %s,"
          " ended_reason = %s WHERE id = %s AND state IN ('active', 'pending')")
RECORD_FAILURE = ("UPDATE subscriptions SET failures = failures + 1, last_error = %s,"
                  " last_error_at = %s WHERE id = %s")
SET_NOTIFIED_ETA = "UPDATE subscriptions SET notified_eta = %s WHERE id = %s"

# the pages a message links to: a subscription by its confirmation digest, by its
# unsubscribe token (compared as digests)
BY_CONFIRM_HASH = """
SELECT s.id, s.address, s.language, s.state, sh.reference FROM subscriptions s
JOIN shipments sh ON sh.id = s.shipment_id WHERE s.confirm_hash = %s
"""
BY_UNSUBSCRIBE_TOKEN = """
SELECT s.id, s.address, s.language, s.state, sh.reference FROM subscriptions s
JOIN shipments sh ON sh.id = s.shipment_id
WHERE sha256(s.unsubscribe_token::bytea) = sha256(%s::bytea)
"""
# confirmed: told of the events after the newest one
CONFIRM = ("UPDATE subscriptions SET state = 'active', confirmed_at = now(),"
           " start_seq = (SELECT coalesce(max(seq), 0) FROM events)"
           " WHERE confirm_hash = %s AND state = 'pending'")
