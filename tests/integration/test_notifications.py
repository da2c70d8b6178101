"""Consignee notifications end to end: a trip driven through MQTT into a real ingest and
API, mails received by a real SMTP server (aiosmtpd): one per chosen milestone, none
doubled across an ingest and API restart mid-trip, German with Berlin times for a German
subscriber, the one-click unsubscribe POST stops the rest; the customer page's sign-up
sends a confirmation first and nothing else until it is confirmed; subscriptions' API and
its 422s."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest

from shiptrack.config import Settings
from shiptrack.tracking_tokens import key_from, token_for
from tests.helpers import publish, query, running_api, running_ingest, wait_for
from tests.integration.test_tracking import T0, at, fast, iso, topic, trip
from tests.smtp_inbox import Inbox, html_of, smtp_server, text_of

AUTH = {"Authorization": "Bearer test-admin-token"}
PUBLIC = "https://track.example"
MONTHS_DE = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
             "September", "Oktober", "November", "Dezember")
ONE_CLICK = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def mail(settings: Settings) -> Iterator[tuple[Inbox, Settings]]:
    box = Inbox()
    with smtp_server(box) as url:
        yield box, fast(settings, smtp_url=url, public_url=PUBLIC,
                        mail_from="Shiptrack Demo <updates@shiptrack.example>")


@contextmanager
def api(settings: Settings) -> Iterator[httpx.Client]:
    with running_api(settings) as base, httpx.Client(base_url=base, headers=AUTH,
                                                     timeout=10) as client:
        yield client


def local(client: httpx.Client, url: str) -> str:
    """A link of a message (absolute, on the public URL) as a path of the API under test."""
    assert url.startswith(PUBLIC + "/"), url
    return urlsplit(url).path


def unsubscribe_url(msg: EmailMessage) -> str:
    match = re.fullmatch(r"<(https?://[^>]+)>", str(msg["List-Unsubscribe"]))
    assert match, msg["List-Unsubscribe"]
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    return match.group(1)


def settled(db: str) -> bool:
    """Every event fanned out and every outbox row sent or dropped."""
    return bool(query(db, "SELECT (SELECT last_seq FROM notification_cursor) >="
                          " (SELECT max(seq) FROM events) AND NOT EXISTS (SELECT 1 FROM"
                          " notification_outbox WHERE sent_at IS NULL AND failed_at IS NULL)"
                      )[0][0])


def test_a_trip_mails_each_chosen_milestone_once_across_restarts(
        mail: tuple[Inbox, Settings]) -> None:
    box, settings = mail
    db = settings.database_url or ""
    fixes = [(topic(settings, "van-1"), json.dumps(f).encode()) for f in trip()]
    with api(settings) as http:
        hub = http.post("/api/v1/geofences", json={
            "type": "Feature", "geometry": {"type": "Point", "coordinates": [13.0, 52.0]},
            "properties": {"name": "origin hub", "radius_m": 300}}).json()["id"]
        r = http.post("/api/v1/shipments", json={
            "reference": "ORD-1001", "device_id": "van-1", "origin": {"geofence_id": hub},
            "created_at": iso(at(-60)),  # the trip replayed below is of three hours ago
            "destination": {"lat": 52.0, "lon": 13.5, "radius_m": 300},
            "route": {"type": "LineString", "coordinates": [[13.0, 52.0], [13.5, 52.0]]},
            "promised_by": iso(T0 - timedelta(hours=1)),  # late from the start
            "subscriptions": [
                {"address": "en@example.com"},
                {"address": "de@example.com", "language": "de", "timezone": "Europe/Berlin",
                 "notify": ["picked_up", "in_transit", "delivered"]},
                {"address": "stop@example.com"}]})
        assert r.status_code == 201, r.text
        subs = r.json()["subscriptions"]
        assert [(s["address"], s["state"], s["language"]) for s in subs] == [
            ("en@example.com", "active", "en"), ("de@example.com", "active", "de"),
            ("stop@example.com", "active", "en")]
        with running_ingest(settings):
            publish(settings.mqtt_url or "", fixes[:20])  # at the origin: at risk
            wait_for(lambda: box.to("stop@example.com") and box.to("en@example.com"), 30)
            (first,) = box.to("stop@example.com")
            assert first["Subject"] == "Your shipment ORD-1001 is running late"
            link = local(http, unsubscribe_url(first))
            page = http.get(link, headers={})  # a GET only shows the page with a button
            assert page.status_code == 200 and '<form method="post">' in page.text
            r = http.post(link, content="List-Unsubscribe=One-Click", headers=ONE_CLICK)
            assert r.status_code == 200 and "no more updates" in r.text
            publish(settings.mqtt_url or "", fixes[20:70])  # picked up, in transit
            wait_for(lambda: len(box.to("de@example.com")) >= 2, 30)
    # both restart mid-trip
    with api(settings) as http, running_ingest(settings):
        publish(settings.mqtt_url or "", fixes[70:])  # out for delivery, delivered
        wait_for(lambda: len(box.to("de@example.com")) >= 3
                 and len(box.to("en@example.com")) >= 4, 30)
        wait_for(lambda: settled(db), 30)
        listed = http.get(f"/api/v1/shipments/{r_id(subs)}/subscriptions").json()["items"]
    assert box.subjects("en@example.com") == [
        "Your shipment ORD-1001 is running late", "Your shipment ORD-1001 is on its way",
        "Your shipment ORD-1001 is out for delivery", "Your shipment ORD-1001 has been delivered"]
    assert box.subjects("de@example.com") == [
        "Ihre Sendung ORD-1001 ist unterwegs", "Ihre Sendung ORD-1001 ist auf dem Transportweg",
        "Ihre Sendung ORD-1001 wurde zugestellt"]
    assert len(box.to("stop@example.com")) == 1  # the one-click POST stopped the rest
    assert {s["address"]: s["state"] for s in listed} == {
        "en@example.com": "active", "de@example.com": "active", "stop@example.com": "ended"}

    picked = box.to("de@example.com")[0]
    assert picked["Content-Language"] == "de"
    assert picked["From"] == "Shiptrack Demo <updates@shiptrack.example>"
    berlin = at(600).astimezone(ZoneInfo("Europe/Berlin"))
    text = text_of(picked)
    (when,) = [line for line in text.splitlines() if line.startswith("Zeitpunkt: ")]
    assert when.endswith(f". {MONTHS_DE[berlin.month - 1]}, {berlin:%H:%M}"), when
    assert "Zeitzone: Mitteleuropäische Zeit" in text
    assert "Voraussichtliche Zustellung:" in text
    # kept as a digest: made again from the id with the key (here from the admin token)
    token = token_for(key_from("test-admin-token"), query(db, "SELECT id FROM shipments")[0][0])
    assert f"{PUBLIC}/t/{token}" in text and f'href="{PUBLIC}/t/{token}"' in html_of(picked)
    assert unsubscribe_url(picked).startswith(f"{PUBLIC}/n/unsubscribe/")
    late = text_of(box.to("en@example.com")[0])
    assert "It will probably arrive later than promised." in late and "Promised by:" in late


def r_id(subs: list[dict[str, Any]]) -> str:
    return str(subs[0]["shipment_id"])


def test_the_customer_page_sign_up_is_confirmed_first(mail: tuple[Inbox, Settings]) -> None:
    box, settings = mail
    db = settings.database_url or ""
    with api(settings.model_copy(update={"notify_signups_per_hour": 3})) as http:
        ship = http.post("/api/v1/shipments", json={
            "reference": "ORD-2002", "device_id": "van-2", "origin": {"lat": 52, "lon": 13},
            "destination": {"lat": 52, "lon": 13.5}}).json()
        token, sid = ship["tracking_token"], ship["id"]
        public = httpx.Client(base_url=str(http.base_url), timeout=10)  # no token
        for bad, field in (({"address": "not-an-address"}, "address"),
                           ({"address": "a@example.com", "language": "tlh"}, "language"),
                           ({"address": "a@example.com", "timezone": "Mars/Olympus"},
                            "timezone"),
                           ({"address": "a@example.com", "channel": "sms"}, "channel")):
            r = public.post(f"/api/v1/track/{token}/subscriptions", json=bad)
            assert r.status_code == 422 and field in r.json()["error"]["message"], r.text
        r = public.post(f"/api/v1/track/{token}/subscriptions",
                        json={"address": "kunde@example.com", "language": "de",
                              "timezone": "Europe/Berlin"})
        assert r.status_code == 202, r.text
        assert public.post("/api/v1/track/nope/subscriptions",
                           json={"address": "x@example.com"}).status_code == 404
        wait_for(lambda: box.to("kunde@example.com"), 20)
        (confirm,) = box.to("kunde@example.com")
        assert confirm["Subject"] == (
            "Bitte bestätigen Sie die Benachrichtigungen zur Sendung ORD-2002")
        assert confirm["List-Unsubscribe"] is None
        # a milestone before the confirmation: nothing is sent for it
        assert http.patch(f"/api/v1/shipments/{sid}",
                          json={"status": "picked_up"}).status_code == 200
        wait_for(lambda: settled(db), 20)
        assert len(box.to("kunde@example.com")) == 1
        link = re.search(r"(https://track\.example/n/confirm/\S+)", text_of(confirm))
        assert link, text_of(confirm)
        path = local(public, link.group(1))
        page = public.get(path)
        assert page.status_code == 200 and "Bestätigen" in page.text
        assert query(db, "SELECT state FROM subscriptions")[0][0] == "pending"  # GET: no
        assert public.post(path).status_code == 200
        assert query(db, "SELECT state FROM subscriptions")[0][0] == "active"
        assert http.patch(f"/api/v1/shipments/{sid}",
                          json={"status": "out_for_delivery"}).status_code == 200
        wait_for(lambda: len(box.to("kunde@example.com")) == 2, 20)
        assert box.subjects("kunde@example.com")[1] == (
            "Ihre Sendung ORD-2002 ist in der Zustellung")
        # a scan reporting damage (issue 14's exception codes) is news; a failed attempt too
        for kind in ("damaged", "attempt_failed"):
            r = http.post("/api/v1/scans", json={
                "scanner_id": "hub-1", "ts": iso(datetime.now(UTC)),
                "shipment_ref": "ORD-2002", "kind": kind})
            assert r.status_code in (200, 201), r.text
        wait_for(lambda: len(box.to("kunde@example.com")) == 4, 20)
        damaged, attempt = box.to("kunde@example.com")[2:]
        assert damaged["Subject"] == "Es gibt ein Problem mit Ihrer Sendung ORD-2002"
        assert "Die Sendung wurde als beschädigt gemeldet." in text_of(damaged)
        assert attempt["Subject"] == "Wir konnten Ihre Sendung ORD-2002 nicht zustellen"
        r = public.post(f"/api/v1/track/{token}/subscriptions",
                        json={"address": "third@example.com"})
        assert r.status_code == 202  # the third sign-up from this address this hour
        r = public.post(f"/api/v1/track/{token}/subscriptions",
                        json={"address": "fourth@example.com"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert public.get("/n/unsubscribe/unknown-token").status_code == 404
        public.close()


def test_subscriptions_api(mail: tuple[Inbox, Settings]) -> None:
    _, settings = mail
    with api(settings) as http:
        bad = http.post("/api/v1/shipments", json={
            "reference": "ORD-3", "device_id": "van-3", "origin": {"lat": 52, "lon": 13},
            "destination": {"lat": 52, "lon": 13.5},
            "subscriptions": [{"address": "ok@example.com"},
                              {"address": "b@example.com", "language": "xx"}]})
        assert bad.status_code == 422
        assert bad.json()["error"]["message"].startswith("subscriptions[1].language:")
        assert http.get("/api/v1/shipments").json()["items"] == []  # nothing was stored
        sid = http.post("/api/v1/shipments", json={
            "reference": "ORD-3", "device_id": "van-3", "origin": {"lat": 52, "lon": 13},
            "destination": {"lat": 52, "lon": 13.5}}).json()["id"]
        url = f"/api/v1/shipments/{sid}/subscriptions"
        r = http.post(url, json={"channel": "sms", "address": "+44 7700 900123",
                                 "language": "en-GB", "timezone": "Europe/London",
                                 "quiet_hours": {"start": "21:30", "end": "08:00"},
                                 "notify": ["delivered"]})
        assert r.status_code == 201, r.text
        sms = r.json()
        assert (sms["address"], sms["language"], sms["quiet_hours"], sms["secret"]) == (
            "+447700900123", "en-GB", {"start": "21:30", "end": "08:00"}, None)
        hook = http.post(url, json={"channel": "webhook",
                                    "address": "https://erp.example/hooks"}).json()
        assert hook["secret"].startswith("whsec_")
        assert http.post(url, json={"channel": "sms", "address": "+447700900123"}
                         ).status_code == 409
        for body, field in (({"address": "x"}, "address"),
                            ({"channel": "fax", "address": "1"}, "channel"),
                            ({"address": "a@example.com", "notify": ["teleported"]}, "notify"),
                            ({"address": "a@example.com",
                              "quiet_hours": {"start": "25:00", "end": "07:00"}},
                             "quiet_hours"),
                            ({"address": "a@example.com", "language": "ja"}, "language")):
            r = http.post(url, json=body)
            assert r.status_code == 422 and r.json()["error"]["message"].startswith(field), r.text
        listed = http.get(url).json()
        assert sorted(s["id"] for s in listed["items"]) == sorted([sms["id"], hook["id"]])
        assert all(s["secret"] is None for s in listed["items"])
        assert listed["next_cursor"] is None
        assert http.delete(f"{url}/{sms['id']}").status_code == 204
        assert http.delete(f"{url}/{sms['id']}").status_code == 404
        assert {s["id"]: s["state"] for s in http.get(url).json()["items"]} == {
            sms["id"]: "ended", hook["id"]: "active"}
        assert http.post("/api/v1/shipments/shp_nope/subscriptions",
                         json={"address": "a@example.com"}).status_code == 404
