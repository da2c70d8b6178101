"""A subscription as given (API, shipment creation, customer page), checked (pure).

Every rule names the field it is about, so the API answers a 422 that says what to fix:
an e-mail address is checked by ``email-validator`` (syntax, no DNS lookup), a phone
number by ``phonenumbers`` (a possible number, stored E.164), a webhook URL is http(s);
``language`` is a BCP 47 tag whose base language has a catalogue (``LANGUAGES``);
``timezone`` an IANA zone known to ``zoneinfo``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from babel import Locale, UnknownLocaleError
from email_validator import EmailNotValidError, validate_email

from shiptrack.errors import InputError
from shiptrack.notify.occurrences import DEFAULT_NOTIFY, KINDS
from shiptrack.notify.quiet import parse_hhmm

CHANNELS = ("email", "sms", "webhook")
LANGUAGES = ("en", "de", "fr", "es")
MAX_ADDRESS = 2000


class SubscriptionError(InputError):
    """Bad input; the message starts with the field it is about."""


@dataclass(frozen=True, slots=True)
class SubscriptionSpec:
    channel: str
    address: str
    language: str
    timezone: str
    quiet_start: time | None
    quiet_end: time | None
    notify: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        quiet = None if self.quiet_start is None or self.quiet_end is None else {
            "start": self.quiet_start.strftime("%H:%M"), "end": self.quiet_end.strftime("%H:%M")}
        return {"channel": self.channel, "address": self.address, "language": self.language,
                "timezone": self.timezone, "quiet_hours": quiet, "notify": list(self.notify)}


def check_address(channel: str, given: Any) -> str:
    if not isinstance(given, str) or not given.strip():
        raise SubscriptionError("address: required")
    address: str = given.strip()
    if len(address) > MAX_ADDRESS:
        raise SubscriptionError(f"address: at most {MAX_ADDRESS} characters")
    if channel == "email":
        try:
            return str(validate_email(address, check_deliverability=False).normalized)
        except EmailNotValidError as exc:
            raise SubscriptionError(f"address: {address!r} is not a valid e-mail address"
                                    f" ({exc})") from exc
    if channel == "sms":
        try:
            number = phonenumbers.parse(address, None)
        except phonenumbers.NumberParseException as exc:
            raise SubscriptionError(f"address: {address!r} is not a phone number in"
                                    " international form (+4915112345678)") from exc
        if not phonenumbers.is_possible_number(number):
            raise SubscriptionError(f"address: {address!r} is not a possible phone number")
        e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        return e164
    parts = urlsplit(address)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SubscriptionError(f"address: {address!r} is not an http(s) URL")
    return address


def check_language(value: Any) -> str:
    """A BCP 47 tag (``de``, ``de-CH``) whose base language has a catalogue."""
    if not isinstance(value, str) or not value:
        raise SubscriptionError(f"language: one of {', '.join(LANGUAGES)}")
    try:
        locale = Locale.parse(value.replace("_", "-"), sep="-")
    except (ValueError, UnknownLocaleError) as exc:
        raise SubscriptionError(f"language: unknown language {value!r}"
                                f" (one of {', '.join(LANGUAGES)})") from exc
    if locale.language not in LANGUAGES:
        raise SubscriptionError(f"language: {value!r} has no translations"
                                f" (one of {', '.join(LANGUAGES)})")
    return str(locale).replace("_", "-")


def check_timezone(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > 64 or value.startswith("/"):
        raise SubscriptionError(f"timezone: unknown time zone {value!r}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise SubscriptionError(f"timezone: unknown time zone {value!r}"
                                " (an IANA name such as Europe/Berlin)") from exc
    return value


def check_quiet(value: Any) -> tuple[time | None, time | None]:
    if value is None:
        return None, None
    if not isinstance(value, dict) or set(value) != {"start", "end"}:
        raise SubscriptionError('quiet_hours: {"start": "HH:MM", "end": "HH:MM"}')
    try:
        start, end = parse_hhmm(value["start"]), parse_hhmm(value["end"])
    except ValueError as exc:
        raise SubscriptionError(f"quiet_hours: {exc}") from exc
    if start == end:
        raise SubscriptionError("quiet_hours: start and end are the same time")
    return start, end


def check_notify(value: Any) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_NOTIFY
    if not isinstance(value, list) or not value:
        raise SubscriptionError(f"notify: a non-empty list of {', '.join(KINDS)}")
    unknown = [v for v in value if v not in KINDS]
    if unknown:
        raise SubscriptionError(f"notify: unknown {unknown[0]!r} (one of {', '.join(KINDS)})")
    return tuple(dict.fromkeys(value))


def parse_subscription(obj: Any, *, channels: tuple[str, ...] = CHANNELS) -> SubscriptionSpec:
    """Check a subscription object; SubscriptionError names the first bad field."""
    if not isinstance(obj, dict):
        raise SubscriptionError("subscription: a JSON object")
    channel = obj.get("channel", "email")
    if channel not in channels:
        raise SubscriptionError(f"channel: one of {', '.join(channels)}")
    extra = set(obj) - {"channel", "address", "language", "timezone", "quiet_hours", "notify"}
    if extra:
        raise SubscriptionError(f"{sorted(extra)[0]}: unknown field")
    start, end = check_quiet(obj.get("quiet_hours"))
    return SubscriptionSpec(
        channel=channel, address=check_address(channel, obj.get("address")),
        language=check_language(obj.get("language", "en")),
        timezone=check_timezone(obj.get("timezone", "UTC")),
        quiet_start=start, quiet_end=end, notify=check_notify(obj.get("notify")))
