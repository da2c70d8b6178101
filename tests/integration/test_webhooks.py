"""Webhooks end to end: events rows -> signed POSTs to a real local HTTP receiver,
verified with the Standard Webhooks reference library; retries with backoff until a 2xx;
event-type filters; deletion stops deliveries."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx
from standardwebhooks import Webhook

from shiptrack.config import Settings
from tests.helpers import http_server, query, running_api, wait_for

ADMIN = {"Authorization": "Bearer test-admin-token"}


class Receiver:
    """Records every POST; fails the first ``failures`` attempts of each message id
    (500, then 503, ...), then answers 204."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls: list[tuple[float, dict[str, str], str]] = []
        self.lock = threading.Lock()

    def answer(self, headers: dict[str, str], body: str) -> int:
        with self.lock:
            self.calls.append((time.monotonic(), headers, body))
            tries = sum(1 for _, h, _ in self.calls if h["webhook-id"] == headers["webhook-id"])
            return (500, 503)[tries % 2] if tries <= self.failures else 204

    def attempts(self, msg_id: str) -> list[float]:
        return [t for t, h, _ in self.calls if h["webhook-id"] == msg_id]


@contextmanager
def receiving(receiver: Receiver) -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"])).decode()
            status = receiver.answer({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    with http_server(Handler) as base:
        yield base + "/hook"


def add_event(db: str, event_id: str, kind: str) -> dict[str, Any]:
    ts = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    query(db, "INSERT INTO events (id, ts, type, device_id, shipment_id, data)"
              " VALUES (%s, %s, %s, 'truck-1', 'shp_1', %s) RETURNING 1",
          (event_id, ts, kind, json.dumps({"kind": "picked_up"})))
    return {"id": event_id, "type": kind, "device_id": "truck-1", "shipment_id": "shp_1"}


def test_signed_deliveries_retried_until_2xx_filtered_and_stopped(settings: Settings) -> None:
    db = settings.database_url or ""
    fast = settings.model_copy(update={"webhook_retry_base_seconds": 0.3,
                                       "webhook_retry_max_seconds": 2.0,
                                       "webhook_allow_private": True})
    only_milestones, flaky = Receiver(), Receiver(failures=2)
    with receiving(only_milestones) as url_a, receiving(flaky) as url_b, \
            running_api(fast) as base, httpx.Client(base_url=base) as http:
        add_event(db, "ev_before", "shipment.milestone")  # before any webhook: not sent
        r = http.post("/api/v1/webhooks", headers=ADMIN, json={
            "url": url_a, "event_types": ["shipment.milestone"], "description": "ERP"})
        assert r.status_code == 201, r.text
        hook_a = r.json()
        assert hook_a["secret"].startswith("whsec_") and hook_a["event_types"] == [
            "shipment.milestone"]
        hook_b = http.post("/api/v1/webhooks", headers=ADMIN, json={"url": url_b}).json()
        listed = http.get("/api/v1/webhooks", headers=ADMIN).json()["items"]
        assert {h["id"] for h in listed} == {hook_a["id"], hook_b["id"]}
        assert all("secret" not in h for h in listed)

        add_event(db, "ev_1", "shipment.milestone")
        add_event(db, "ev_2", "geofence.enter")
        wait_for(lambda: len(only_milestones.calls) >= 1 and len(flaky.calls) >= 6, 20)

        (_, headers, body), = only_milestones.calls
        payload = Webhook(hook_a["secret"]).verify(body, headers)
        assert headers["webhook-id"] == "ev_1" and payload["id"] == "ev_1"
        assert payload["type"] == "shipment.milestone" and payload["data"] == {
            "kind": "picked_up"}
        assert payload["ts"].startswith("2026-11-26T10:00:00")

        for msg_id in ("ev_1", "ev_2"):  # retried until a 2xx, the pause doubling
            t = flaky.attempts(msg_id)
            assert len(t) == 3 and t[1] - t[0] >= 0.25 and t[2] - t[1] >= 0.5, t
        assert not flaky.attempts("ev_before")
        for _, h, b in flaky.calls:
            assert Webhook(hook_b["secret"]).verify(b, h)["id"] == h["webhook-id"]
        wait_for(lambda: query(db, "SELECT count(*) FROM webhook_deliveries"
                                   " WHERE delivered_at IS NOT NULL")[0][0] == 3)
        assert query(db, "SELECT attempts, last_status FROM webhook_deliveries"
                         " WHERE webhook_id = %s ORDER BY event_seq",
                     (hook_b["id"],)) == [(3, 204), (3, 204)]

        assert http.delete(f"/api/v1/webhooks/{hook_a['id']}", headers=ADMIN).status_code == 204
        assert http.delete(f"/api/v1/webhooks/{hook_a['id']}", headers=ADMIN).status_code == 404
        add_event(db, "ev_3", "shipment.milestone")
        wait_for(lambda: len(flaky.attempts("ev_3")) == 3, 20)
        assert len(only_milestones.calls) == 1  # deleted: nothing more
        assert [h["id"] for h in http.get("/api/v1/webhooks", headers=ADMIN).json()["items"]
                ] == [hook_b["id"]]

        for bad in ({}, {"url": "ftp://x.example/"}, {"url": "not a url"},
                    {"url": url_a, "event_types": ["Bad Type"]},
                    {"url": url_a, "secret": "mine"}):
            r = http.post("/api/v1/webhooks", headers=ADMIN, json=bad)
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid", bad


def test_a_claim_takes_a_few_deliveries_per_webhook_and_leases_them(db_url: str) -> None:
    """Two claims (as two API processes would make) never take the same delivery, and
    one webhook's backlog does not fill a claim."""
    from datetime import timedelta

    from api.webhooks import PER_HOOK
    from shiptrack.db.queries.webhooks import CLAIM as CLAIM_SQL

    for hook in ("wh_a", "wh_b"):
        query(db_url, "INSERT INTO webhooks (id, url, secret) VALUES (%s, 'http://x', 's')"
                      " RETURNING 1", (hook,))
        query(db_url, "INSERT INTO webhook_deliveries (webhook_id, event_id, event_seq, body)"
                      " SELECT %s, 'ev' || i, i, '{}' FROM generate_series(1, 12) i RETURNING 1",
              (hook,))
    params = {"lease": timedelta(seconds=60), "n": 50, "per_hook": PER_HOOK}
    first = query(db_url, CLAIM_SQL, params)
    second = query(db_url, CLAIM_SQL, params)
    assert sorted(r[1] for r in first) == ["wh_a"] * PER_HOOK + ["wh_b"] * PER_HOOK
    assert {r[0] for r in first}.isdisjoint({r[0] for r in second})
    assert len(second) == 2 * PER_HOOK and all(r[5] == 1 for r in first + second)
