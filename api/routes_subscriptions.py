"""Subscriptions (SPEC "Notifications"):

- ``POST/GET /api/v1/shipments/{id}/subscriptions``, ``DELETE .../{sub_id}`` (write scope
  to change, read to list);
- ``POST /api/v1/track/{tracking_token}/subscriptions``: the customer page's sign-up, no
  auth (the tracking token is the credential), e-mail only, rate-limited per client
  address; the subscription stays ``pending`` and only a confirmation mail is sent until
  its link is followed;
- the pages the messages link to are ``api/routes_notify_pages.py``.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row

from api.auth import Reader, Writer
from api.errors import ApiError, error_body, error_responses
from api.notify_schemas import (
    SelfSubscription,
    SignupAccepted,
    Subscription,
    SubscriptionCreate,
    SubscriptionList,
)
from api.pagination import decode_cursor, page
from api.routes_track import TrackingToken, at_least, find_shipment, keep_after_delivery
from api.subscriptions_io import (
    as_model,
    checked,
    drop_pending,
    insert,
    refuse_private,
)
from shiptrack.db.queries import subscriptions as subscription_sql

router = APIRouter(tags=["notifications"])
ShipmentId = Annotated[str, Path(max_length=64)]
SubId = Annotated[str, Path(pattern=r"^sub_[0-9A-Z]{26}$")]
LinkToken = Annotated[str, Path(max_length=100)]
SIGNUP_WINDOW_S = 3600.0


class RateLimit:
    """At most ``n`` calls per ``window`` seconds per key, in this process."""

    def __init__(self, n: int, window: float) -> None:
        self.n, self.window = n, window
        self.calls: dict[str, deque[float]] = defaultdict(deque)

    def retry_after(self, key: str, now: float | None = None) -> float:
        """0 when the call may go ahead (and counts it), else seconds to wait."""
        now = time.monotonic() if now is None else now
        calls = self.calls[key]
        while calls and calls[0] <= now - self.window:
            calls.popleft()
        if len(calls) >= self.n:
            return calls[0] + self.window - now
        calls.append(now)
        if len(self.calls) > 10_000:  # forget idle clients
            for k in [k for k, v in self.calls.items() if not v]:
                del self.calls[k]
        return 0.0


async def _shipment(cur: Any, shipment_id: str) -> dict[str, Any]:
    await cur.execute(subscription_sql.SHIPMENT_REFERENCE, (shipment_id,))
    ship = await cur.fetchone()
    if ship is None:
        raise ApiError(404, f"no shipment {shipment_id!r}")
    return dict(ship)


@router.post("/api/v1/shipments/{shipment_id}/subscriptions", status_code=201,
             response_model=Subscription, summary="Subscribe a consignee to a shipment",
             responses=error_responses(404, 409, 422))
async def create_subscription(request: Request, _: Writer, shipment_id: ShipmentId,
                              body: SubscriptionCreate) -> Subscription:
    spec = checked(body.model_dump(exclude_unset=True))
    await refuse_private([spec], request.app.state.settings.webhook_allow_private)
    async with request.app.state.pool.connection() as conn, conn.transaction(), \
            conn.cursor(row_factory=dict_row) as cur:
        ship = await _shipment(cur, shipment_id)
        row, _confirm = await insert(cur, ship["id"], ship["reference"], spec)
    if row is None:
        raise ApiError(409, f"{spec.address} is already subscribed to this shipment "
                            f"by {spec.channel}", "already_subscribed")
    return as_model(row, show_secret=True)


@router.get("/api/v1/shipments/{shipment_id}/subscriptions", response_model=SubscriptionList,
            summary="A shipment's subscriptions (oldest first)", responses=error_responses(404))
async def list_subscriptions(
    request: Request, _: Reader, shipment_id: ShipmentId,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> SubscriptionList:
    after = str(decode_cursor(cursor, 1)[0]) if cursor else ""
    async with request.app.state.pool.connection() as conn, \
            conn.cursor(row_factory=dict_row) as cur:
        await _shipment(cur, shipment_id)
        await cur.execute(subscription_sql.PAGE, (shipment_id, after, limit + 1))
        rows, next_cursor = page(await cur.fetchall(), limit, "id")
    return SubscriptionList(items=[as_model(r) for r in rows], next_cursor=next_cursor)


@router.delete("/api/v1/shipments/{shipment_id}/subscriptions/{sub_id}", status_code=204,
               response_class=Response, summary="End a subscription (nothing more is sent)",
               responses=error_responses(404))
async def delete_subscription(request: Request, _: Writer, shipment_id: ShipmentId,
                              sub_id: SubId) -> Response:
    async with request.app.state.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(subscription_sql.DELETE, (sub_id, shipment_id))
        if cur.rowcount == 0:
            raise ApiError(404, f"no live subscription {sub_id!r} of shipment {shipment_id!r}")
        await drop_pending(conn, sub_id, "subscription deleted")
    return Response(status_code=204)


def _signups(request: Request) -> RateLimit:
    state = request.app.state
    if not hasattr(state, "signup_limit"):
        state.signup_limit = RateLimit(state.settings.notify_signups_per_hour, SIGNUP_WINDOW_S)
    limit: RateLimit = state.signup_limit
    return limit


@router.post("/api/v1/track/{tracking_token}/subscriptions", status_code=202,
             response_model=SignupAccepted,
             summary="Sign up for e-mail updates from the tracking page (public; "
                     "confirmed by a link first)",
             responses=error_responses(404, 422, 429))
async def sign_up(request: Request, tracking_token: TrackingToken,
                  body: SelfSubscription) -> Any:
    started = time.monotonic()
    spec = checked({"channel": "email", **body.model_dump(exclude_unset=True)},
                   channels=("email",))
    client = request.client.host if request.client else "?"
    wait = _signups(request).retry_after(client)
    if wait > 0:
        seconds = int(wait) + 1
        return JSONResponse(error_body("rate_limited", f"too many sign-ups from this address;"
                                       f" try again in {seconds} s"), 429,
                            headers={"Retry-After": str(seconds)})
    ship = await find_shipment(request.app.state.pool, tracking_token,
                               keep_after_delivery(request.app))
    if ship is not None:
        async with request.app.state.pool.connection() as conn, conn.transaction(), \
                conn.cursor(row_factory=dict_row) as cur:
            await insert(cur, ship["id"], ship["reference"], spec, source="customer")
        request.app.state.notifier.poke()  # the confirmation mail is due now
    await at_least(started)
    if ship is None:
        raise ApiError(404, "no shipment for this tracking link")
    return SignupAccepted(message=f"a confirmation link was sent to {spec.address}")
