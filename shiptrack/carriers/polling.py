"""Pulled carrier updates: carriers' own tracking APIs through karrio's connectors.

``SHIPTRACK_CARRIER_ACCOUNTS`` (JSON) names, per carrier code of ours (``dhl``, ``ups``,
...), the karrio connector and its credentials:
``{"dhl": {"connector": "dhl_universal", "consumer_key": "...", "consumer_secret": "...",
"requests_per_minute": 60}}``; optional ``server_url`` points the connector at another
host (a sandbox, a proxy; the tests' local server). Only shipments of these carriers are
polled. Connectors are karrio packages (``karrio-dhl-universal`` is a dependency; others,
e.g. ``karrio-ups``, ``karrio-usps``, are installed beside it).

Pure policy here: how often a shipment is polled for its stage (``interval_s``), how long
a failure waits (``backoff_s``), a token bucket per carrier (``RateLimiter``); and the
blocking ``fetch`` (call it in a thread) that asks karrio and returns a ``CarrierUpdate``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shiptrack.carriers import mapping
from shiptrack.carriers.updates import CarrierUpdate, checkpoint, parse_time
from shiptrack.errors import ShiptrackError
from shiptrack.shipments import RANK

MAX_BACKOFF_S = 6 * 3600.0
FIRST_BACKOFF_S = 60.0
DEFAULT_PER_MINUTE = 30.0


class PollError(ShiptrackError):
    """The carrier answered with errors, or not at all."""


@dataclass(frozen=True, slots=True)
class Account:
    carrier: str
    connector: str
    credentials: dict[str, Any]
    server_url: str | None = None
    per_minute: float = DEFAULT_PER_MINUTE


def accounts(raw: dict[str, dict[str, Any]]) -> dict[str, Account]:
    """The accounts of ``SHIPTRACK_CARRIER_ACCOUNTS``; a bad entry is a ``ValueError``."""
    out = {}
    for carrier, spec in raw.items():
        if not isinstance(spec, dict) or not isinstance(spec.get("connector"), str):
            raise ValueError(f"carrier account {carrier!r} needs a \"connector\" (karrio's name)")
        rest = {k: v for k, v in spec.items()
                if k not in ("connector", "server_url", "requests_per_minute")}
        per_minute = float(spec.get("requests_per_minute") or DEFAULT_PER_MINUTE)
        if not math.isfinite(per_minute) or per_minute <= 0:
            raise ValueError(f"carrier account {carrier!r}: requests_per_minute must be > 0")
        out[carrier] = Account(carrier, spec["connector"], rest, spec.get("server_url"),
                               per_minute)
    return out


def interval_s(status: str, base_s: float) -> float:
    """Before pickup: 4 x base; under way: base; at the door (out for delivery, a failed
    attempt, at a pickup point): base / 2."""
    stage = RANK.get(status, 0)
    return base_s * 4 if stage == 0 else base_s / 2 if stage >= 3 else base_s


def backoff_s(failures: int) -> float:
    """After ``failures`` failed polls in a row: 60 s, doubling, at most 6 h."""
    return min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2.0 ** max(0, failures - 1))


@dataclass(slots=True)
class RateLimiter:
    """A token bucket: ``per_minute`` requests a minute, bursts of up to a tenth of that
    (at least one); ``pause`` holds every request back (a carrier failing or limiting us)."""

    per_minute: float
    clock: Callable[[], float] = time.monotonic
    tokens: float = -1.0
    stamp: float = 0.0
    paused_until: float = 0.0
    failures: int = 0

    def _capacity(self) -> float:
        return max(1.0, self.per_minute / 10)

    def take(self) -> float:
        """0 and a token taken, or the seconds to wait for one."""
        now = self.clock()
        if now < self.paused_until:
            return self.paused_until - now
        if self.tokens < 0:
            self.tokens, self.stamp = self._capacity(), now
        self.tokens = min(self._capacity(),
                          self.tokens + (now - self.stamp) * self.per_minute / 60)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) * 60 / self.per_minute

    def failed(self) -> None:
        self.failures += 1
        self.paused_until = self.clock() + backoff_s(self.failures)

    def succeeded(self) -> None:
        self.failures, self.paused_until = 0, 0.0


# -- karrio ------------------------------------------------------------------------------------

def _karrio() -> Any:
    from loguru import logger

    logger.disable("karrio")  # karrio logs through loguru to stderr; ours go through logging
    import karrio.sdk as karrio  # imported on first use: heavy, and only pollers need it

    return karrio


@dataclass(slots=True)
class Gateways:
    """One karrio gateway per account, made on first use."""

    made: dict[str, Any] = field(default_factory=dict)

    def get(self, account: Account) -> Any:
        if account.carrier not in self.made:
            self.made[account.carrier] = make_gateway(account)
        return self.made[account.carrier]


def make_gateway(account: Account) -> Any:
    karrio = _karrio()
    try:
        provider = karrio.gateway.providers[account.connector]
    except KeyError as exc:
        raise PollError(f"no karrio connector {account.connector!r} is installed "
                        f"(pip install karrio-{account.connector.replace('_', '-')})") from exc
    settings_cls = provider.Settings
    if account.server_url:  # karrio's server_url is a property: a subclass points elsewhere
        url = account.server_url.rstrip("/")
        settings_cls = type(f"Pointed{settings_cls.__name__}", (settings_cls,),
                            {"server_url": property(lambda _self: url)})
    return karrio.gateway[account.connector].create(settings_cls(**account.credentials))


def fetch(gateways: Gateways, account: Account, number: str,
          now: datetime | None = None) -> CarrierUpdate:
    """Ask the carrier (blocking) for one tracking number."""
    karrio = _karrio()
    from karrio.core.models import TrackingRequest

    now = now or datetime.now(UTC)
    request = karrio.Tracking.fetch(TrackingRequest(tracking_numbers=[number]))
    details, messages = request.from_(gateways.get(account)).parse()
    for found in details or []:
        if str(found.tracking_number) == number:
            return from_karrio(_asdict(found), account.connector, now)
    words = "; ".join(f"{getattr(m, 'code', '')} {getattr(m, 'message', '')}".strip()
                      for m in messages or []) or "no tracking details"
    raise PollError(f"{account.carrier} {number}: {words}")


def _asdict(obj: Any) -> dict[str, Any]:
    from karrio.core.utils import DP

    value: dict[str, Any] = DP.to_dict(obj)
    return value


def from_karrio(details: dict[str, Any], connector: str, now: datetime) -> CarrierUpdate:
    """karrio's ``TrackingDetails`` (as a dict) as a ``CarrierUpdate``; an event's status is
    karrio's normalised one, its ``reason`` the incident reason."""
    update = CarrierUpdate(f"karrio:{connector}", str(details.get("tracking_number")),
                           details.get("carrier_name"),
                           parse_time(details.get("estimated_delivery")))
    for event in details.get("events") or []:
        ts = parse_time(event.get("timestamp")) or parse_time(
            f"{event.get('date')}T{event.get('time') or '00:00'}")
        if ts is None:
            continue
        status, reason = event.get("status"), event.get("reason")
        update.checkpoints.append(checkpoint(
            ts, status, reason or event.get("code") or None, event.get("description"),
            event.get("location"), mapping.karrio(status, reason), now))
    if not update.checkpoints and details.get("status"):
        status = str(details["status"])
        update.checkpoints.append(checkpoint(now, status, None, None, None,
                                             mapping.karrio(status, None), now))
    return update
