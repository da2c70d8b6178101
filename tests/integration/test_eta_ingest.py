"""The ETA in ingest, against the real database and broker: a shipment made over REST, a
device driven along its route (fixes from the last hours), the shipment's ETA fields,
the events (``shipment.eta_changed`` not on every fix, ``shipment.at_risk`` once) and the
``eta`` messages of the fleet stream."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import pairwise
from typing import Any

import httpx
from websockets.sync.client import connect
from websockets.sync.connection import Connection

from shiptrack.config import Settings
from tests.helpers import publish, query, running_api, running_ingest, wait_for

AUTH = {"Authorization": "Bearer test-admin-token"}
START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
ROUTE = {"type": "LineString", "coordinates": [[13.0, 52.0], [13.5, 52.0]]}  # ~34 km east
STEPS = 8


def iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def fix(settings: Settings, device: str, i: int) -> tuple[str, bytes]:
    """Step ``i``: a minute after the previous one, ~690 m further east."""
    body = {"ts": iso(START + timedelta(minutes=i)), "lat": 52.0, "lon": 13.0 + 0.01 * i,
            "speed": 11.5, "heading": 90}
    return (f"{settings.mqtt_topic_prefix}shiptrack/v1/devices/{device}/position",
            json.dumps(body).encode())


def create(http: httpx.Client, reference: str, device: str, promised_by: datetime) -> str:
    r = http.post("/api/v1/shipments", json={
        "reference": reference, "device_id": device, "origin": {"lat": 52.0, "lon": 13.0},
        "destination": {"lat": 52.0, "lon": 13.5}, "promised_by": iso(promised_by),
        "route": ROUTE, "created_at": iso(START - timedelta(minutes=1))})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def etas(db: str, sid: str) -> tuple[Any, ...]:
    [row] = query(db, "SELECT eta, eta_low, eta_high, remaining_m, at_risk FROM shipments"
                      " WHERE id = %s", (sid,))
    return row


def events(db: str, sid: str, type_: str) -> list[tuple[Any, ...]]:
    return query(db, "SELECT id, ts, data FROM events WHERE shipment_id = %s AND type = %s"
                     " ORDER BY seq", (sid, type_))


def next_eta(ws: Connection, sid: str) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = json.loads(ws.recv(timeout=10))
        if msg["type"] == "eta" and msg["shipment_id"] == sid:
            return msg


def test_eta_fields_events_and_stream_follow_the_fixes(settings: Settings) -> None:
    db = settings.database_url or ""
    mqtt_url = settings.mqtt_url or ""
    with running_ingest(settings), running_api(settings) as base, \
            httpx.Client(base_url=base, headers=AUTH, timeout=10) as http:
        on_time = create(http, "ETA-1", "truck-1", START + timedelta(days=2))
        late = create(http, "ETA-2", "truck-2", START)  # already unreachable at the start
        url = base.replace("http", "ws") + "/ws/fleet?token=test-admin-token"
        with connect(url, close_timeout=0.5) as ws:  # the API's close handshake is not timed
            remaining = []
            for i in range(STEPS):
                publish(mqtt_url, [fix(settings, "truck-1", i), fix(settings, "truck-2", i)])
                ts = START + timedelta(minutes=i)
                wait_for(partial(query, db, "SELECT 1 FROM devices WHERE last_ts = %s"
                                 " HAVING count(*) = 2", (ts,)))
                eta, low, high, metres, at_risk = etas(db, on_time)
                assert low <= eta <= high and not at_risk
                remaining.append(metres)
            msg = next_eta(ws, on_time)
            assert msg["device_id"] == "truck-1" and msg["at_risk"] is False
            assert {"eta", "eta_low", "eta_high", "remaining_m", "promised_by"} <= msg.keys()

        # remaining_m falls as the device advances (~690 m a step on a ~34.3 km route)
        assert all(b < a for a, b in pairwise(remaining)), remaining
        assert 28_000 < remaining[-1] < 30_500
        api = http.get(f"/api/v1/shipments/{on_time}").json()
        assert api["remaining_m"] == remaining[-1] and api["eta"] is not None

        changed = events(db, on_time, "shipment.eta_changed")
        assert 1 <= len(changed) < STEPS
        assert changed[0][2]["previous_eta"] is None
        assert events(db, on_time, "shipment.at_risk") == []

        [risk] = events(db, late, "shipment.at_risk")  # once, not on every later fix
        assert risk[2]["promised_by"] == iso(START) and risk[1] == START
        assert etas(db, late)[4] is True
        assert http.get("/api/v1/shipments?at_risk=true").json()["items"][0]["id"] == late
        [(announced,)] = query(db, "SELECT eta_announced FROM shipments WHERE id = %s",
                               (on_time,))
        assert iso(announced) == changed[-1][2]["eta"]
