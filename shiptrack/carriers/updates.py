"""Carrier updates in the providers' own formats, to one ``CarrierUpdate``; and their
signatures. Pure.

- EasyPost: an ``Event`` (``object: "Event"``, ``description: "tracker.updated"`` or
  ``"tracker.created"``) whose ``result`` is a ``Tracker``: ``tracking_code``,
  ``carrier``, ``status``, ``status_detail``, ``est_delivery_date`` and
  ``tracking_details`` (each ``datetime``, ``status``, ``status_detail``, ``message``,
  ``tracking_location``). Signature: ``X-Hmac-Signature: hmac-sha256-hex=<hex HMAC-SHA256
  of the body>`` keyed by the webhook secret (NFKD-normalised, as EasyPost's clients do).
- AfterShip: a ``tracking_update`` webhook: ``event_id``, ``msg`` (a tracking:
  ``tracking_number``, ``slug``, ``tag``, ``subtag``, ``expected_delivery`` /
  ``courier_estimated_delivery_date`` / ``aftership_estimated_delivery_date``,
  ``checkpoints``: ``checkpoint_time``, ``tag``, ``subtag``, ``message``, ``location``).
  Signature: ``aftership-hmac-sha256``: base64 HMAC-SHA256 of the body.
- karrio: its ``TrackingDetails`` (``shiptrack.carriers.polling`` turns them into dicts
  of the same fields).

Each checkpoint gets a key (the provider's id where it has one, else a digest of its time,
status, detail and message): applying the same checkpoint twice changes nothing. Times
without an offset are read as UTC; a time ahead of the server clock is taken as now (a
carrier's local time misread can never date a milestone in the future). A date-only
estimated delivery is noon UTC of that day (the same calendar day from UTC-11 to UTC+11).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from shiptrack.carriers import mapping
from shiptrack.carriers.mapping import Meaning
from shiptrack.errors import InputError

PROVIDERS = ("easypost", "aftership")
MAX_TEXT = 500


class UpdateError(InputError):
    """Not a usable update in that provider's format; the message says why."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    key: str
    ts: datetime
    status: str | None  # the provider's own status / tag
    detail: str | None  # its status_detail / subtag / incident reason
    message: str | None
    location: str | None
    meaning: Meaning


@dataclass(slots=True)
class CarrierUpdate:
    provider: str  # easypost, aftership, karrio:<connector>
    tracking_number: str
    carrier: str | None = None
    eta: datetime | None = None  # the carrier's estimated delivery
    checkpoints: list[Checkpoint] = field(default_factory=list)
    ignored: str | None = None  # why nothing in it applies (an event of another kind)


# -- signatures ------------------------------------------------------------------------------

def _mac(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), body, hashlib.sha256).digest()


def sign_easypost(secret: str, body: bytes) -> str:
    return "hmac-sha256-hex=" + _mac(unicodedata.normalize("NFKD", secret), body).hex()


def sign_aftership(secret: str, body: bytes) -> str:
    return base64.b64encode(_mac(secret, body)).decode()


SIGNATURES: dict[str, tuple[str, Callable[[str, bytes], str]]] = {
    "easypost": ("x-hmac-signature", sign_easypost),
    "aftership": ("aftership-hmac-sha256", sign_aftership),
}


def signature_ok(provider: str, secret: str, headers: dict[str, str], body: bytes) -> bool:
    header, sign = SIGNATURES[provider]
    given = headers.get(header, "")
    return bool(given) and hmac.compare_digest(given.strip(), sign(secret, body))


# -- values ----------------------------------------------------------------------------------

def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:MAX_TEXT]


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 / ISO 8601 (no offset: UTC) or a date (noon UTC); None if neither."""
    text = _text(value)
    if text is None:
        return None
    try:
        if len(text) == 10:
            parsed = datetime.combine(date.fromisoformat(text), time(12), UTC)
        else:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _key(*parts: Any) -> str:
    raw = "|".join("" if p is None else str(p) for p in parts)
    return hashlib.blake2b(raw.encode(), digest_size=12).hexdigest()


def checkpoint(ts: datetime, status: str | None, detail: str | None, message: str | None,
               location: str | None, meaning: Meaning, now: datetime,
               key: str | None = None) -> Checkpoint:
    return Checkpoint(key or _key(ts.isoformat(), status, detail, message), min(ts, now),
                      status, detail, message, location, meaning)


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise UpdateError(f"{what} must be a JSON object")
    return value


def _place(*parts: Any) -> str | None:
    return ", ".join(p for p in (_text(x) for x in parts) if p) or None


# -- EasyPost ----------------------------------------------------------------------------------

def easypost(payload: Any, now: datetime) -> CarrierUpdate:
    event = _obj(payload, "an EasyPost Event")
    tracker = _obj(event.get("result"), "result (the Tracker)")
    number = _text(tracker.get("tracking_code"))
    if number is None:
        raise UpdateError("result.tracking_code is required")
    update = CarrierUpdate("easypost", number, _text(tracker.get("carrier")),
                           parse_time(tracker.get("est_delivery_date")))
    description = _text(event.get("description")) or ""
    if not description.startswith("tracker."):
        update.ignored = f"not a tracker event: {description or 'no description'}"
        return update
    details = tracker.get("tracking_details")
    for raw in details if isinstance(details, list) else []:
        if not isinstance(raw, dict):
            continue
        ts = parse_time(raw.get("datetime"))
        if ts is None:
            continue
        found = raw.get("tracking_location")
        where: dict[str, Any] = found if isinstance(found, dict) else {}
        status, detail = _text(raw.get("status")), _text(raw.get("status_detail"))
        update.checkpoints.append(checkpoint(
            ts, status, detail, _text(raw.get("message")),
            _place(where.get("city"), where.get("state"), where.get("country")),
            mapping.easypost(status, detail), now))
    if not update.checkpoints:  # a tracker without details: its own status, at its time
        ts = parse_time(tracker.get("updated_at")) or now
        status, detail = _text(tracker.get("status")), _text(tracker.get("status_detail"))
        update.checkpoints.append(checkpoint(ts, status, detail, None, None,
                                             mapping.easypost(status, detail), now))
    return update


# -- AfterShip ---------------------------------------------------------------------------------

def _aftership_eta(msg: dict[str, Any]) -> datetime | None:
    for key in ("courier_estimated_delivery_date", "aftership_estimated_delivery_date",
                "custom_estimated_delivery_date"):
        value = msg.get(key)
        if isinstance(value, dict):
            found = parse_time(value.get("estimated_delivery_date"))
            if found is not None:
                return found
    return parse_time(msg.get("expected_delivery"))


def aftership(payload: Any, now: datetime) -> CarrierUpdate:
    hook = _obj(payload, "an AfterShip webhook")
    msg = _obj(hook.get("msg"), "msg (the tracking)")
    number = _text(msg.get("tracking_number"))
    if number is None:
        raise UpdateError("msg.tracking_number is required")
    update = CarrierUpdate("aftership", number, _text(msg.get("slug")), _aftership_eta(msg))
    if hook.get("event") != "tracking_update":
        update.ignored = f"not a tracking_update: {str(hook.get('event'))[:40]}"
        return update
    points = msg.get("checkpoints")
    for raw in points if isinstance(points, list) else []:
        if not isinstance(raw, dict):
            continue
        ts = parse_time(raw.get("checkpoint_time"))
        if ts is None:
            continue
        tag, subtag = _text(raw.get("tag")), _text(raw.get("subtag"))
        update.checkpoints.append(checkpoint(
            ts, tag, subtag, _text(raw.get("message")),
            _text(raw.get("location")) or _place(raw.get("city"), raw.get("state"),
                                                  raw.get("country_iso3")),
            mapping.aftership(tag, subtag), now))
    if not update.checkpoints:
        tag, subtag = _text(msg.get("tag")), _text(msg.get("subtag"))
        ts = parse_time(msg.get("updated_at")) or now
        update.checkpoints.append(checkpoint(ts, tag, subtag, _text(msg.get("subtag_message")),
                                             None, mapping.aftership(tag, subtag), now))
    return update


PARSERS: dict[str, Callable[[Any, datetime], CarrierUpdate]] = {
    "easypost": easypost, "aftership": aftership,
}
