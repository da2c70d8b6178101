"""The demo scenario against the real stack: ingest and API in threads, PostgreSQL, Mosquitto.

``shiptrack simulate --scenario demo`` creates a geofence per hub and a shipment per trip
through the API, drives the trucks at 2000x (the clock starts hours in the past, so no
timestamp is ever ahead of the wall clock), and every shipment must reach ``delivered``.
Skipped, with the reason, while the geofence and shipment endpoints answer 404.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from shiptrack.config import Settings
from simulator.cli import app
from simulator.provision import Api, ProvisionError
from tests.helpers import running_api, running_ingest, wait_for

TOKEN = "test-admin-token"


def endpoints_missing(api: Api) -> str | None:
    for path in ("/api/v1/geofences", "/api/v1/shipments"):
        try:
            api.request("GET", path)
        except ProvisionError as exc:
            if exc.status == 404:
                return f"GET {path} answers 404: geofences/shipments (issue 4) not there yet"
            raise
    return None


def shipments_of(api: Api, device_prefix: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = api.request("GET", "/api/v1/shipments?limit=200"
                           + (f"&cursor={cursor}" if cursor else ""))
        items.extend(s for s in page["items"] if str(s["device_id"]).startswith(device_prefix))
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def test_demo_shipments_reach_delivered(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"admin_token": TOKEN})
    with running_ingest(settings), running_api(settings) as base:
        api = Api(base, TOKEN)
        reason = endpoints_missing(api)
        if reason:
            pytest.skip(reason)
        prefix = f"demo{uuid.uuid4().hex[:6]}-"
        truth = tmp_path / "truth.jsonl"
        result = CliRunner().invoke(app, [
            "--scenario", "demo", "--devices", "3", "--seed", "4", "--trips-per-truck", "1",
            "--max-leg-km", "200", "--speed", "2000", "--park-s", "1800", "--duration", "40",
            "--device-prefix", prefix, "--api-url", base, "--token", TOKEN,
            "--mqtt-url", settings.mqtt_url or "", "--topic-prefix", settings.mqtt_topic_prefix,
            "--truth", str(truth)])
        assert result.exit_code == 0, result.output
        records = [json.loads(line) for line in truth.read_text().splitlines()]
        trips = [r for r in records if r["type"] == "trip"]
        assert len(trips) == 3 and all(not t["partial"] for t in trips)

        def delivered() -> list[dict[str, Any]]:
            found = shipments_of(api, prefix)
            return found if len(found) == 3 and all(
                s["status"] == "delivered" for s in found) else []

        shipments = wait_for(delivered, timeout=20)
        for shipment in shipments:
            kinds = [m["kind"] for m in shipment["milestones"]]
            assert kinds.index("picked_up") < kinds.index("delivered")
            assert kinds[0] == "created"  # created_at: when the trip was planned


class RecordingApi:
    """A stand-in for the SPEC's geofence and shipment endpoints that records each POST."""

    def __init__(self, refuse_geofence_ids: bool = False) -> None:
        self.posts: list[tuple[str, dict[str, Any], str]] = []
        self.refuse_geofence_ids = refuse_geofence_ids
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.posts.append((self.path, body, self.headers["Authorization"]))
                by_fence = isinstance(body.get("origin"), dict) and "geofence_id" in body["origin"]
                if self.path.endswith("/shipments") and outer.refuse_geofence_ids and by_fence:
                    self._answer(422, {"error": {"code": "invalid", "message": "no"}})
                else:
                    self._answer(201, {"id": f"id-{len(outer.posts)}"})

            def _answer(self, status: int, obj: dict[str, Any]) -> None:
                raw = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body, _ in self.posts if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("refuse_geofence_ids", [False, True])
def test_demo_provisions_fences_and_shipments_per_trip(tmp_path: Path, mqtt_url: str,
                                                       refuse_geofence_ids: bool) -> None:
    stub = RecordingApi(refuse_geofence_ids)
    trips = tmp_path / "trips.jsonl"
    try:
        result = CliRunner().invoke(app, [
            "--scenario", "demo", "--devices", "4", "--seed", "9", "--trips-per-truck", "2",
            "--max-leg-km", "300", "--speed", "20000", "--park-s", "60", "--duration", "30",
            "--device-prefix", f"demo{uuid.uuid4().hex[:6]}-", "--api-url", stub.url,
            "--token", TOKEN, "--mqtt-url", mqtt_url,
            "--topic-prefix", f"test-{uuid.uuid4().hex[:8]}/", "--trips", str(trips)])
    finally:
        stub.close()
    assert result.exit_code == 0, result.output
    fences, shipments = stub.of("/api/v1/geofences"), stub.of("/api/v1/shipments")
    names = [f["properties"]["name"] for f in fences]
    assert len(names) == len(set(names))  # one fence per hub
    assert all(f["geometry"]["type"] == "Point" and f["properties"]["radius_m"] > 0
               for f in fences)
    created = shipments[1::2] if refuse_geofence_ids else shipments
    assert len(created) == 8  # 4 trucks x 2 trips, each a shipment
    assert all(auth == f"Bearer {TOKEN}" for _, _, auth in stub.posts)
    for body in created:
        assert body["reference"].startswith("SIM-") and body["device_id"].startswith("demo")
        assert body["route"]["type"] == "LineString" and len(body["route"]["coordinates"]) > 10
        assert "shock_g" in body["sensor_limits"]
        if refuse_geofence_ids:  # the fallback: circles by point and radius
            assert set(body["origin"]) == {"lat", "lon", "radius_m"}
        else:
            assert set(body["origin"]) == {"geofence_id"}
    lines = [json.loads(line) for line in trips.read_text().splitlines()]
    assert len(lines) == 8 and all(len(t["points"]) > 20 for t in lines)
    assert {t["trip_id"].rsplit("-t", 1)[0] for t in lines} == {t["device_id"] for t in lines}
