"""Consignee notifications, the pure parts: which events are news for a subscriber
(``occurrences``), checking subscriptions (``subscription``), quiet hours (``quiet``),
messages from templates and catalogues (``render``, ``catalogs``) and e-mail building
(``mail``). The I/O (outbox worker, channels, routes) is in ``api/notify_*.py`` and
``api/routes_subscriptions.py``; the decisions in docs/DESIGN.md "Notifications"."""

from shiptrack.notify.occurrences import (
    CUSTOMER_FACING,
    DEFAULT_NOTIFY,
    KINDS,
    Occurrence,
    eta_news,
    occurrence,
)
from shiptrack.notify.quiet import release_at
from shiptrack.notify.subscription import (
    CHANNELS,
    LANGUAGES,
    SubscriptionError,
    SubscriptionSpec,
    parse_subscription,
)

__all__ = [
    "CHANNELS", "CUSTOMER_FACING", "DEFAULT_NOTIFY", "KINDS", "LANGUAGES",
    "Occurrence", "SubscriptionError", "SubscriptionSpec", "eta_news", "occurrence",
    "parse_subscription", "release_at",
]
