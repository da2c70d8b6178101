"""The notification outbox against the real PostgreSQL and a real SMTP server (aiosmtpd),
with the worker's clock moved by the test: quiet hours hold a message until they end;
refusals are recorded (5xx ends the subscription, 4xx is retried); a provider that is
down delays, never loses; two workers (two API processes) send each occurrence once; SMS
through a local Twilio-shaped server; the webhook channel verified as Standard Webhooks;
which exceptions and ETA moves reach a consignee."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from standardwebhooks import Webhook

from api.notify_worker import NotificationWorker
from shiptrack.config import Settings
from shiptrack.embedded import free_port
from shiptrack.tracking_tokens import key_from, token_for
from tests.helpers import http_server, query
from tests.smtp_inbox import Inbox, smtp_server, text_of

# 23:30 in Berlin (CET, UTC+1) on a Tuesday
LATE = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def add_shipment(db: str, sid: str = "shp_n1", reference: str = "PO-77") -> str:
    query(db, "INSERT INTO shipments (id, reference, device_id, tracking_token, origin,"
              " destination) VALUES (%s, %s, 'truck-1', %s, '{}', '{}') RETURNING 1",
          (sid, reference, token_for(key_from("test-admin-token"), sid)))
    return sid


def add_subscription(db: str, sub_id: str, address: str, *, shipment: str = "shp_n1",
                     channel: str = "email", language: str = "en", zone: str = "UTC",
                     quiet: tuple[str, str] | None = None,
                     notify: tuple[str, ...] = ("picked_up", "delivered", "exception",
                                                "delayed"),
                     secret: str | None = None) -> None:
    query(db, "INSERT INTO subscriptions (id, shipment_id, channel, address, language,"
              " timezone, quiet_start, quiet_end, notify, unsubscribe_token, secret)"
              " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING 1",
          (sub_id, shipment, channel, address, language, zone, quiet and quiet[0],
           quiet and quiet[1], list(notify), f"unsub-{sub_id}", secret))


SEQ = iter(range(1, 10_000))


def add_event(db: str, type_: str, data: dict[str, Any], ts: datetime = LATE,
              shipment: str = "shp_n1") -> str:
    event_id = f"evt_test{next(SEQ):06d}"
    query(db, "INSERT INTO events (id, ts, type, device_id, shipment_id, data)"
              " VALUES (%s, %s, %s, 'truck-1', %s, %s) RETURNING 1",
          (event_id, ts, type_, shipment, json.dumps(data)))
    return event_id


@asynccontextmanager
async def worker(settings: Settings, clock: Clock) -> AsyncIterator[NotificationWorker]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        settings.database_url or "", min_size=1, max_size=4, open=False,
        kwargs={"autocommit": True})
    await pool.open(wait=True)
    w = NotificationWorker(pool, settings, clock=clock)
    try:
        await w.fan_out()  # the cursor starts at the end of the log
        yield w
    finally:
        await w.close()
        await pool.close()


async def round_(w: NotificationWorker) -> int:
    return await w.fan_out() + await w.deliver_due()


def outbox(db: str, sub_id: str) -> list[tuple[Any, ...]]:
    return query(db, "SELECT kind, attempts, sent_at IS NOT NULL, failed_at IS NOT NULL,"
                     " held_until, last_error FROM notification_outbox"
                     " WHERE subscription_id = %s ORDER BY id", (sub_id,))


def subscription(db: str, sub_id: str) -> tuple[Any, ...]:
    return query(db, "SELECT state, failures, last_error, ended_reason FROM subscriptions"
                     " WHERE id = %s", (sub_id,))[0]


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, str]]:
    box = Inbox()
    with smtp_server(box) as url:
        yield box, url


async def test_quiet_hours_hold_a_message_until_they_end(
        settings: Settings, inbox: tuple[Inbox, str]) -> None:
    box, url = inbox
    db = settings.database_url or ""
    add_shipment(db)
    add_subscription(db, "sub_de", "anna@example.com", language="de", zone="Europe/Berlin",
                     quiet=("22:00", "07:00"))
    add_subscription(db, "sub_ny", "bob@example.com", zone="America/New_York",
                     quiet=("22:00", "07:00"))  # 17:30 there: not quiet
    clock = Clock(LATE)
    async with worker(settings.model_copy(update={"smtp_url": url}), clock) as w:
        add_event(db, "shipment.milestone", {"kind": "picked_up", "status": "picked_up"})
        await round_(w)
        assert len(box.to("bob@example.com")) == 1
        ends = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)  # 07:00 in Berlin
        assert outbox(db, "sub_de") == [("picked_up", 0, False, False, ends, None)]
        assert box.to("anna@example.com") == []
        clock.now = ends - timedelta(seconds=1)  # 06:59:59 there: still held
        assert await round_(w) == 0 and box.to("anna@example.com") == []
        clock.now = ends
        await round_(w)
    (mail,) = box.to("anna@example.com")
    assert mail["Subject"] == "Ihre Sendung PO-77 ist unterwegs"
    assert mail["Content-Language"] == "de"
    text = text_of(mail)
    assert "Zeitpunkt: Di., 1. Dezember, 23:30" in text  # the event's time in Berlin
    assert "Zeitzone: Mitteleuropäische Zeit" in text
    assert outbox(db, "sub_de")[0][:4] == ("picked_up", 1, True, False)


async def test_refusals_are_recorded_and_a_provider_down_only_delays(
        settings: Settings) -> None:
    db = settings.database_url or ""
    add_shipment(db)
    add_subscription(db, "sub_gone", "gone@example.com",
                     notify=("picked_up", "in_transit", "delivered"))
    add_subscription(db, "sub_busy", "busy@example.com")
    box = Inbox()
    box.refuse["gone@example.com"] = "550 5.1.1 no such user"
    box.defer["busy@example.com"] = 2
    port = free_port()
    clock = Clock(LATE)
    base = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{port}"})
    async with worker(base, clock) as w:
        add_event(db, "shipment.milestone", {"kind": "picked_up"})
        add_event(db, "shipment.milestone", {"kind": "in_transit"})  # gone@ only
        await round_(w)  # nothing listens: the provider is down
        for sub in ("sub_gone", "sub_busy"):
            ((kind, attempts, sent, failed, _, error), *_) = outbox(db, sub)
            assert (kind, attempts, sent, failed) == ("picked_up", 1, False, False)
            assert "Connect" in error or "refused" in error.lower(), error
            assert subscription(db, sub)[:2] == ("active", 0)  # not the recipient's fault
        with smtp_server(box, port):
            clock.advance(seconds=29)
            assert await round_(w) == 0  # the backoff (30 s) is not over
            clock.advance(seconds=1)
            await round_(w)
            state, failures, error, reason = subscription(db, "sub_gone")
            assert (state, failures) == ("bounced", 1) and "550 5.1.1" in error
            assert reason == error and outbox(db, "sub_gone")[0][3] is True
            # what was still queued for it is dropped with the reason
            assert outbox(db, "sub_gone")[1][2:] == (False, True, None, "subscription bounced")
            assert subscription(db, "sub_busy")[:2] == ("active", 1)  # 451: once more
            for _ in range(2):
                clock.advance(seconds=120)
                await round_(w)
            assert outbox(db, "sub_busy")[0][:4] == ("picked_up", 4, True, False)
            assert "451" in subscription(db, "sub_busy")[2]
            add_event(db, "shipment.milestone", {"kind": "delivered"})
            await round_(w)
    assert [m["Subject"] for m in box.to("busy@example.com")] == [
        "Your shipment PO-77 is on its way", "Your shipment PO-77 has been delivered"]
    assert box.to("gone@example.com") == []
    assert len(outbox(db, "sub_gone")) == 2  # a bounced subscription gets nothing new


async def test_smtp_login_from_the_url_and_a_refused_login_only_delays(
        settings: Settings) -> None:
    db = settings.database_url or ""
    add_shipment(db)
    add_subscription(db, "sub_a", "a@example.com")
    box = Inbox()
    clock = Clock(LATE)
    with smtp_server(box, login=("mailer@shop", "s3:cret")) as url:
        wrong = url.replace("smtp://", "smtp://mailer%40shop:nope@")
        async with worker(settings.model_copy(update={"smtp_url": wrong}), clock) as w:
            add_event(db, "shipment.milestone", {"kind": "picked_up"})
            await round_(w)
        ((_, attempts, sent, failed, _, error),) = outbox(db, "sub_a")
        assert (attempts, sent, failed) == (1, False, False) and "535" in error, error
        assert subscription(db, "sub_a")[:2] == ("active", 0)  # our login, not the recipient
        right = url.replace("smtp://", "smtp://mailer%40shop:s3%3Acret@")
        clock.advance(seconds=30)
        async with worker(settings.model_copy(update={"smtp_url": right}), clock) as w:
            await round_(w)
    assert box.subjects("a@example.com") == ["Your shipment PO-77 is on its way"]


async def test_two_workers_send_each_occurrence_once(settings: Settings,
                                                     inbox: tuple[Inbox, str]) -> None:
    box, url = inbox
    db = settings.database_url or ""
    for i in range(3):
        add_shipment(db, f"shp_m{i}", f"M-{i}")
        add_subscription(db, f"sub_m{i}", f"m{i}@example.com", shipment=f"shp_m{i}",
                         notify=("picked_up", "in_transit", "out_for_delivery", "delivered"))
    clock = Clock(LATE)
    fast = settings.model_copy(update={"smtp_url": url})
    async with worker(fast, clock) as a, worker(fast, clock) as b:
        for kind in ("picked_up", "in_transit", "out_for_delivery", "delivered"):
            for i in range(3):
                add_event(db, "shipment.milestone", {"kind": kind}, shipment=f"shp_m{i}")
        for _ in range(3):
            await asyncio.gather(round_(a), round_(b), round_(a), round_(b))
            a.fanout.gap_since = b.fanout.gap_since = None
        await asyncio.gather(round_(a), round_(b))
    for i in range(3):
        subjects = box.subjects(f"m{i}@example.com")
        assert len(subjects) == 4 and len(set(subjects)) == 4, subjects
    assert query(db, "SELECT count(*) FROM notification_outbox WHERE sent_at IS NULL")[0][0] == 0


async def test_customer_facing_exceptions_and_big_eta_moves_only(
        settings: Settings, inbox: tuple[Inbox, str]) -> None:
    box, url = inbox
    db = settings.database_url or ""
    add_shipment(db)
    add_subscription(db, "sub_x", "x@example.com", language="fr",
                     notify=("exception", "eta_changed"))
    clock = Clock(LATE)
    eta = LATE + timedelta(hours=5)

    def eta_event(minutes: float) -> None:
        add_event(db, "shipment.eta_changed", {
            "eta": (eta + timedelta(minutes=minutes)).isoformat(),
            "eta_low": (eta + timedelta(minutes=minutes - 30)).isoformat(),
            "eta_high": (eta + timedelta(minutes=minutes + 30)).isoformat()})

    async with worker(settings.model_copy(update={"smtp_url": url}), clock) as w:
        add_event(db, "shipment.exception", {"code": "sensor_excursion", "reason": "9 C"})
        add_event(db, "shipment.exception", {"code": "offline", "reason": "no fix"})
        add_event(db, "shipment.exception", {"code": "delayed"})  # told by at_risk
        add_event(db, "device.long_stop", {"duration_s": 2000})
        add_event(db, "shipment.exception", {"code": "customs_hold", "reason": "papers"})
        eta_event(0)  # the first ETA: the baseline
        eta_event(25)  # moved 25 min: not news (threshold 60)
        eta_event(61)  # 61 min from the one last told: news
        eta_event(90)  # 29 min from that: not news
        await round_(w)
    subjects = box.subjects("x@example.com")
    assert subjects == ["Un problème est survenu avec votre envoi PO-77",
                        "Nouvelle heure de livraison prévue pour votre envoi PO-77"]
    assert "L'envoi est retenu en douane." in text_of(box.to("x@example.com")[0])
    assert "Livraison prévue : mer. 2 décembre, 04:01" in text_of(box.to("x@example.com")[1])


@contextmanager
def twilio(answers: dict[str, tuple[int, dict[str, Any]]]) -> Iterator[tuple[str, list[Any]]]:
    """A local server shaped like Twilio's Messages API; answers by the To number."""
    calls: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            form = parse_qs(self.rfile.read(int(self.headers["content-length"])).decode())
            calls.append((self.path, self.headers["authorization"], form))
            status, body = answers.get(form["To"][0], (201, {"sid": "SM1", "status": "queued"}))
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(Handler) as base:
        yield base, calls


@contextmanager
def hook_receiver() -> Iterator[tuple[str, list[Any]]]:
    calls: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"])).decode()
            calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(Handler) as base:
        yield base + "/hook", calls


async def test_sms_through_twilio_and_webhooks_signed(settings: Settings) -> None:
    from api.webhooks import new_secret

    db = settings.database_url or ""
    add_shipment(db)
    secret = new_secret()
    bad = (400, {"code": 21211, "message": "Invalid 'To' Phone Number"})
    with twilio({"+15005550001": bad}) as (sms_url, calls), hook_receiver() as (hook, hits):
        add_subscription(db, "sub_sms", "+4915112345678", channel="sms", language="es",
                         zone="Europe/Madrid")
        add_subscription(db, "sub_bad", "+15005550001", channel="sms")
        add_subscription(db, "sub_hook", hook, channel="webhook", secret=secret)
        clock = Clock(LATE)
        s = settings.model_copy(update={"sms_url": sms_url, "sms_account_sid": "AC123",
                                        "sms_auth_token": "tok", "sms_from": "+15005550006",
                                        "webhook_allow_private": True})  # a local receiver
        async with worker(s, clock) as w:
            add_event(db, "shipment.milestone", {"kind": "delivered"})
            await round_(w)
    ok = [c for c in calls if c[2]["To"] == ["+4915112345678"]]
    ((path, auth, form),) = ok
    assert path == "/2010-04-01/Accounts/AC123/Messages.json"
    assert auth.startswith("Basic ") and form["From"] == ["+15005550006"]
    assert form["Body"][0].startswith("Su envío PO-77 ha sido entregado.")
    assert form["Body"][0].endswith("/t/" + token_for(key_from("test-admin-token"), "shp_n1"))
    state, failures, error, _ = subscription(db, "sub_bad")
    assert (state, failures) == ("bounced", 1) and "21211" in error
    ((headers, body),) = hits
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "notification.delivered" and payload["reference"] == "PO-77"
    assert payload["text"] == "Your shipment PO-77 has been delivered"
    assert headers["webhook-id"] == payload["id"]


def test_the_outbox_key_refuses_a_second_row(db_url: str) -> None:
    add_shipment(db_url)
    add_subscription(db_url, "sub_k", "k@example.com")
    insert = ("INSERT INTO notification_outbox (subscription_id, occurrence, kind,"
              " next_attempt_at) VALUES ('sub_k', 'evt_1', 'picked_up', now())")
    query(db_url, insert + " RETURNING 1")
    with pytest.raises(psycopg.errors.UniqueViolation):
        query(db_url, insert + " RETURNING 1")


async def test_unconfirmed_sign_ups_end(settings: Settings) -> None:
    db = settings.database_url or ""
    add_shipment(db)
    add_subscription(db, "sub_old", "old@example.com")
    add_subscription(db, "sub_new", "new@example.com")
    query(db, "UPDATE subscriptions SET state = 'pending', source = 'customer',"
              " created_at = %s - CASE id WHEN 'sub_old' THEN interval '8 days'"
              " ELSE interval '6 days' END RETURNING 1", (LATE,))
    async with worker(settings, Clock(LATE)) as w:
        assert await w.expire_pending() == 1
    assert subscription(db, "sub_old")[0::3] == ("ended", "not confirmed")
    assert subscription(db, "sub_new")[0] == "pending"
