"""Tracking tokens: derived from the shipment id with a server key, stored as digests.

A shipment's token is ``base64url(HMAC-SHA256(key, "shiptrack-tracking:" + id))`` (256
bits, 43 characters). The database keeps only its SHA-256 (``tracking_token_hash``), as
for API tokens, so a copy of the database opens no tracking page; whoever holds the key
(the API: its answers, notifications' links) can make the token again from the id. The
key is ``SHIPTRACK_TRACKING_KEY``, else derived from the admin token (then rotating the
admin token changes every link: set the key). Tokens issued before the key existed were
random; their digests still open their links, but they cannot be made again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def key_from(secret: str) -> bytes:
    return hashlib.sha256(b"shiptrack-tracking-key:" + secret.encode()).digest()


def token_for(key: bytes, shipment_id: str) -> str:
    mac = hmac.new(key, b"shiptrack-tracking:" + shipment_id.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def known_token(key: bytes, shipment_id: str, stored: bytes | None) -> str | None:
    """The shipment's token when it is the one the key makes (its digest is stored)."""
    token = token_for(key, shipment_id)
    return token if stored is not None and hmac.compare_digest(digest(token),
                                                                 bytes(stored)) else None
