"""Named SQL of the notification outbox (``notification_outbox``, ``notification_cursor``):
the fan-out of events to rows, the claims of due rows, and their answers."""

from __future__ import annotations

# ---- fan-out (api/notify_fanout.py) -----------------------------------------------------

INIT_CURSOR = ("INSERT INTO notification_cursor (id, last_seq)"
               " SELECT true, coalesce(max(seq), 0) FROM events"
               " ON CONFLICT DO NOTHING")
LOCK_CURSOR = "SELECT last_seq FROM notification_cursor FOR UPDATE"
MOVE_CURSOR = "UPDATE notification_cursor SET last_seq = %s"
EVENTS_AFTER = """
SELECT seq, id, type, ts, shipment_id, data FROM events
WHERE seq > %s ORDER BY seq LIMIT %s
"""
# the active subscriptions of some shipments, with what their messages tell of them
SUBSCRIBERS = """
SELECT s.id, s.shipment_id, s.notify, s.start_seq, s.notified_eta,
       sh.reference, sh.status, sh.eta, sh.eta_low, sh.eta_high, sh.promised_by
FROM subscriptions s JOIN shipments sh ON sh.id = s.shipment_id
WHERE s.shipment_id = ANY(%s) AND s.state = 'active'
"""
INSERT = """
INSERT INTO notification_outbox (subscription_id, occurrence, kind, event_id, context,
                                 next_attempt_at)
VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
"""
# a customer's sign-up: its confirmation message, due now
INSERT_CONFIRM = ("INSERT INTO notification_outbox (subscription_id, occurrence, kind, context,"
                  " next_attempt_at) SELECT %s, 'confirm', 'confirm', %s, now()")
# once confirmed, the sent confirmation forgets its token
FORGET_CONFIRM_TOKEN = (
    "UPDATE notification_outbox o SET context = o.context - 'confirm_token'"
    " FROM subscriptions s WHERE s.id = o.subscription_id AND s.confirm_hash = %s"
    " AND o.kind = 'confirm' AND o.sent_at IS NOT NULL")

# ---- delivery (api/notify_worker.py) ----------------------------------------------------

# Due rows of live subscriptions (a pending one: its confirmation only), at most %(n)s,
# leased until %(now)s + %(lease)s; with what sending needs.
CLAIM = """
UPDATE notification_outbox o
SET attempts = o.attempts + 1, last_attempt_at = %(now)s,
    next_attempt_at = %(now)s + %(lease)s
FROM subscriptions s JOIN shipments sh ON sh.id = s.shipment_id
WHERE s.id = o.subscription_id AND o.id IN (
    SELECT q.id FROM notification_outbox q JOIN subscriptions qs ON qs.id = q.subscription_id
    WHERE q.sent_at IS NULL AND q.failed_at IS NULL AND q.next_attempt_at <= %(now)s
      AND (qs.state = 'active' OR (qs.state = 'pending' AND q.kind = 'confirm'))
    ORDER BY q.next_attempt_at, q.id LIMIT %(n)s FOR UPDATE OF q SKIP LOCKED)
RETURNING o.id, o.subscription_id, o.occurrence, o.kind, o.context, o.attempts,
          %(now)s - o.created_at AS age, s.channel, s.address, s.language, s.timezone,
          s.quiet_start, s.quiet_end, s.secret, s.unsubscribe_token, s.shipment_id,
          sh.tracking_token_hash
"""
# claimed rows given back, not counted as attempts (due at %s)
RELEASE = ("UPDATE notification_outbox SET attempts = attempts - 1,"
           " next_attempt_at = %s WHERE id = ANY(%s)")
# held by quiet hours until %s (not counted as an attempt)
HOLD = ("UPDATE notification_outbox SET attempts = attempts - 1,"
        " next_attempt_at = %s, held_until = %s WHERE id = %s")
SENT = "UPDATE notification_outbox SET sent_at = %s, last_error = NULL WHERE id = %s"
FAILED = "UPDATE notification_outbox SET failed_at = %s, last_error = %s WHERE id = %s"
RETRY = ("UPDATE notification_outbox SET last_error = %s, next_attempt_at = %s,"
         " failed_at = CASE WHEN %s THEN %s::timestamptz END WHERE id = %s")
# an ended subscription's unsent messages are dropped (kept, with the reason)
DROP_PENDING = ("UPDATE notification_outbox SET failed_at = now(), last_error = %s"
                " WHERE subscription_id = %s AND sent_at IS NULL AND failed_at IS NULL")
