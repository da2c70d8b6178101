"""Named SQL of the record of broker credentials (``broker_credentials``) that
``/api/v1/.../credentials`` issues and revokes (the broker keeps the secrets)."""

from __future__ import annotations

from shiptrack import broker_identity as bi

# one subject's changes at a time: %s is "<kind>/<subject>"
LOCK_SUBJECT = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 13))"
REVOKE = """
UPDATE broker_credentials SET revoked_at = now()
WHERE kind = %s AND subject = %s AND revoked_at IS NULL
"""
ISSUE = """
INSERT INTO broker_credentials (id, kind, subject, username)
VALUES (%s, %s, %s, %s) RETURNING created_at
"""
_KIND = {k: f"kind = '{k}'" for k in bi.KINDS}  # three fixed words, no input in SQL


def listing(kind: bi.Kind | None, revoked: bool) -> str:
    """For ``api.pagination.id_page``: the credentials of a kind (None: all), revoked
    ones too or not."""
    where = ["true"]
    if kind is not None:
        where.append(_KIND[kind])
    if not revoked:
        where.append("revoked_at IS NULL")
    return ("SELECT id, kind, subject, username, created_at, revoked_at FROM broker_credentials"
            f" WHERE {' AND '.join(where)}")
