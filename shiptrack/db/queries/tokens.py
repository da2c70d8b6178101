"""Named SQL of API tokens (``api_tokens``: bearer tokens kept as their SHA-256) and of
the fleet stream's single-use tickets (``ws_tickets``)."""

from __future__ import annotations

COLUMNS = "id, name, scopes, created_at, expires_at, last_used_at"

INSERT = (f"INSERT INTO api_tokens (id, name, token_hash, scopes, expires_at)"
          f" VALUES (%s, %s, %s, %s, %s) RETURNING {COLUMNS}")
# for ``api.pagination.id_page``
SELECT_LIVE = f"SELECT {COLUMNS} FROM api_tokens WHERE revoked_at IS NULL"
REVOKE = "UPDATE api_tokens SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL"
NAME = "SELECT name FROM api_tokens WHERE id = %s"

# a bearer token by its digest (not revoked)
BY_DIGEST = """
SELECT id, token_hash, scopes, expires_at, last_used_at FROM api_tokens
WHERE token_hash = %s AND revoked_at IS NULL
"""
TOUCH = "UPDATE api_tokens SET last_used_at = now() WHERE id = %s"

DELETE_EXPIRED_TICKETS = "DELETE FROM ws_tickets WHERE expires_at < now()"
INSERT_TICKET = ("INSERT INTO ws_tickets (ticket_hash, scopes, token_id, expires_at)"
                 " VALUES (%s, %s, %s, %s)")
# A ticket used (and so gone): its scopes, whether it is still live, and whether the
# token that asked for it still is.
REDEEM_TICKET = """
DELETE FROM ws_tickets t WHERE t.ticket_hash = %s
RETURNING t.scopes, t.token_id, t.expires_at > now() AS live,
    t.token_id IS NULL OR EXISTS (SELECT 1 FROM api_tokens k WHERE k.id = t.token_id
        AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())) AS valid
"""
