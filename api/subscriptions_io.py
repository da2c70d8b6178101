"""Storing subscriptions, for every door they come in by: ``POST .../subscriptions``,
``subscriptions`` on ``POST /api/v1/shipments`` and the customer page's sign-up."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from psycopg import AsyncCursor
from psycopg.types.json import Jsonb

from api.errors import ApiError
from api.notify_schemas import Subscription
from api.webhook_targets import refusal
from api.webhooks import new_secret
from shiptrack.db.queries import notifications as notification_sql
from shiptrack.db.queries import subscriptions as subscription_sql
from shiptrack.events import new_id
from shiptrack.notify.subscription import (
    CHANNELS,
    SubscriptionError,
    SubscriptionSpec,
    parse_subscription,
)

MAX_PER_SHIPMENT = 50


def checked(obj: Any, where: str = "", channels: tuple[str, ...] = CHANNELS
            ) -> SubscriptionSpec:
    """A subscription object checked, or a 422 naming the field (prefixed by ``where``)."""
    try:
        return parse_subscription(obj, channels=channels)
    except SubscriptionError as exc:
        raise SubscriptionError(f"{where}{exc}") from exc  # a 422 (api/errors.py)


def as_model(row: dict[str, Any], show_secret: bool = False) -> Subscription:
    """The API's view of a row (the webhook secret only when asked: at creation)."""
    quiet = None
    if row["quiet_start"] is not None and row["quiet_end"] is not None:
        quiet = {"start": row["quiet_start"].strftime("%H:%M"),
                 "end": row["quiet_end"].strftime("%H:%M")}
    fields = {k: v for k, v in row.items() if k not in ("quiet_start", "quiet_end", "secret")}
    return Subscription(**fields, quiet_hours=quiet,
                        secret=row.get("secret") if show_secret else None)


async def insert(cur: AsyncCursor[Any], shipment_id: str, reference: str,
                 spec: SubscriptionSpec, *, source: str = "api"
                 ) -> tuple[dict[str, Any] | None, str | None]:
    """Store one subscription (state ``active``, or ``pending`` with a confirmation mail
    queued for a customer's sign-up). Returns (row, confirm token); the row is None when
    the same address already has a live subscription to this shipment."""
    await cur.execute(subscription_sql.COUNT_LIVE, (shipment_id,))
    if int((await cur.fetchone() or {"n": 0})["n"]) >= MAX_PER_SHIPMENT:
        raise ApiError(422, f"subscriptions: at most {MAX_PER_SHIPMENT} per shipment")
    pending = source == "customer"
    confirm = secrets.token_urlsafe(32) if pending else None
    await cur.execute(
        subscription_sql.INSERT,
        (new_id("sub"), shipment_id, spec.channel, spec.address, spec.language,
         spec.timezone, spec.quiet_start, spec.quiet_end, list(spec.notify),
         "pending" if pending else "active", source,
         new_secret() if spec.channel == "webhook" else None, secrets.token_urlsafe(32),
         hashlib.sha256(confirm.encode()).digest() if confirm else None))
    row: dict[str, Any] | None = await cur.fetchone()
    if row is not None and confirm is not None:
        await cur.execute(
            notification_sql.INSERT_CONFIRM,
            (row["id"], Jsonb({"kind": "confirm", "reference": reference,
                               "confirm_token": confirm})))
    return row, confirm


async def refuse_private(specs: list[SubscriptionSpec], allow_private: bool,
                         where: str = "") -> None:
    """A ``webhook`` subscription may not point at a loopback, link-local or private
    address, as a webhook may not (``api/webhook_targets.py``): a 422 naming it."""
    if allow_private:
        return
    for i, spec in enumerate(specs):
        reason = await refusal(spec.address) if spec.channel == "webhook" else None
        if reason:
            prefix = where.format(i=i)
            raise ApiError(422, f"{prefix}address{reason.removeprefix('url')}",
                           "private_address")


def checked_all(objs: list[Any] | None) -> list[SubscriptionSpec]:
    """``subscriptions`` given with a shipment: each checked (422 names its index)."""
    return [checked(obj, f"subscriptions[{i}].") for i, obj in enumerate(objs or [])]


async def insert_all(cur: AsyncCursor[Any], shipment_id: str, reference: str,
                     specs: list[SubscriptionSpec]) -> list[Subscription] | None:
    """Store the subscriptions given with a new shipment (an address given twice once)."""
    if not specs:
        return None
    made = [(await insert(cur, shipment_id, reference, spec))[0] for spec in specs]
    return [as_model(row, show_secret=True) for row in made if row is not None]


async def drop_pending(conn: Any, sub_id: str, why: str) -> None:
    """An ended subscription's unsent messages are dropped (kept, with the reason)."""
    await conn.execute(notification_sql.DROP_PENDING, (why, sub_id))
