"""``late_probability``, ``at_risk`` from it and ``eta_first``, through ingest (real broker
and database) to the REST shipment state, the public tracking state and the ``eta``
stream messages."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from websockets.sync.client import connect

from shiptrack.config import Settings
from tests.helpers import publish, query, running_api, running_ingest, wait_for
from tests.integration.test_eta_ingest import AUTH, START, create, fix, next_eta

MOVING = 4
STANDING = 6  # then ten minutes a fix without moving: the ETA slips later


def standing(settings: Settings, device: str, i: int) -> tuple[str, bytes]:
    body = {"ts": (START + timedelta(minutes=MOVING + 10 * (i + 1))).isoformat(),
            "lat": 52.0, "lon": 13.0 + 0.01 * (MOVING - 1), "speed": 0.0}
    return (f"{settings.mqtt_topic_prefix}shiptrack/v1/devices/{device}/position",
            json.dumps(body).encode())


def stored(db: str, sid: str) -> tuple[Any, ...]:
    [row] = query(db, "SELECT eta, eta_first, late_probability, at_risk FROM shipments"
                      " WHERE id = %s", (sid,))
    return row


def parsed(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_late_probability_at_risk_and_eta_first(settings: Settings) -> None:
    db = settings.database_url or ""
    mqtt_url = settings.mqtt_url or ""
    with running_ingest(settings), running_api(settings) as base, \
            httpx.Client(base_url=base, headers=AUTH, timeout=10) as http:
        on_time = create(http, "LP-1", "lp-truck-1", START + timedelta(days=2))
        late = create(http, "LP-2", "lp-truck-2", START)  # already past at the start
        token = http.get(f"/api/v1/shipments/{late}").json()["tracking_token"]
        url = base.replace("http", "ws") + "/ws/fleet?token=test-admin-token"
        with connect(url, close_timeout=0.5) as ws:
            fixes = [(fix, i) for i in range(MOVING)] + [(standing, i) for i in range(STANDING)]
            first_eta = None
            for make, i in fixes:
                publish(mqtt_url, [make(settings, "lp-truck-1", i),
                                   make(settings, "lp-truck-2", i)])
                ts = json.loads(make(settings, "lp-truck-1", i)[1])["ts"]
                wait_for(partial(query, db, "SELECT 1 FROM devices WHERE last_ts = %s"
                                 " AND device_id LIKE 'lp-truck-%%' HAVING count(*) = 2",
                                 (parsed(ts),)))
                if first_eta is None:
                    first_eta = wait_for(lambda: stored(db, on_time)[0])
            msg = next_eta(ws, on_time)
            assert {"late_probability", "eta_first"} <= msg.keys()

        eta, eta_first, chance, at_risk = stored(db, on_time)
        assert eta_first == first_eta  # kept from the first estimate ...
        assert eta > eta_first + timedelta(minutes=20)  # ... while the latest slipped
        assert chance is not None and chance < 0.05 and at_risk is False
        eta, eta_first, chance, at_risk = stored(db, late)
        assert chance == 1.0 and at_risk is True

        api = http.get(f"/api/v1/shipments/{on_time}").json()
        assert parsed(api["eta_first"]) == first_eta and api["late_probability"] < 0.05
        assert parsed(api["eta"]) > parsed(api["eta_first"])
        public = httpx.get(f"{base}/api/v1/track/{token}", timeout=10).json()
        assert public["late_probability"] == 1.0 and public["at_risk"] is True
        assert public["eta_first"] is not None
        [risk] = query(db, "SELECT data FROM events WHERE shipment_id = %s"
                           " AND type = 'shipment.at_risk'", (late,))
        assert risk[0]["late_probability"] == 1.0 and risk[0]["basis"] == "late_probability"
