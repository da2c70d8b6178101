"""What real trackers and deployments send, from the outside: publish over MQTT (or start
a process), then read through the API. Outliers, migrations at start, milestones in time
order with ``created_at``, and track downsampling over the data's span."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from shiptrack.config import Settings
from shiptrack.db.migrate import LOCK_KEY
from shiptrack.events import event_id
from tests.helpers import publish, query, running_api, running_ingest, wait_for

AUTH = {"Authorization": "Bearer test-admin-token"}
BERLIN = (52.52, 13.405)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def topic(settings: Settings, device: str) -> str:
    return f"{settings.mqtt_topic_prefix}shiptrack/v1/devices/{device}/position"


def east(lat: float, lon: float, metres: float) -> tuple[float, float]:
    return lat, lon + metres / (111_195 * math.cos(math.radians(lat)))


def fixes(start: datetime, origin: tuple[float, float], n: int, every_s: float = 1.0,
          mps: float = 20.0) -> list[dict[str, Any]]:
    """``n`` fixes of a device driving east at ``mps``, one every ``every_s``."""
    return [{"ts": iso(start + timedelta(seconds=k * every_s)),
             "lat": origin[0], "lon": east(*origin, mps * k * every_s)[1], "speed": mps}
            for k in range(n)]


def device(http: httpx.Client, device_id: str) -> dict[str, Any]:
    r = http.get(f"/api/v1/devices/{device_id}")
    return dict(r.json()) if r.status_code == 200 else {}


def live_ts(http: httpx.Client, device_id: str) -> str | None:
    position = device(http, device_id).get("last_position") or {}
    return position.get("ts")


@pytest.fixture
def http(settings: Settings) -> Iterator[httpx.Client]:
    with running_ingest(settings), running_api(settings) as base, \
            httpx.Client(base_url=base, headers=AUTH, timeout=10) as client:
        yield client


# -- outliers --------------------------------------------------------------------------------

def test_a_first_batch_with_an_old_far_fix_goes_live_on_the_good_ones(
        settings: Settings, http: httpx.Client) -> None:
    """The issue's case: five consistent fixes and one old fix 110 km away, in one batch."""
    now = datetime.now(UTC).replace(microsecond=0)
    good = fixes(now - timedelta(seconds=50), BERLIN, 5, every_s=10)
    glitch = {"ts": iso(now - timedelta(seconds=120)), "lat": BERLIN[0] + 1.0,
              "lon": BERLIN[1]}
    publish(settings.mqtt_url or "", [(topic(settings, "t1"), json.dumps([glitch, *good])
                                       .encode())])
    wait_for(lambda: live_ts(http, "t1") == good[-1]["ts"])
    position = device(http, "t1")["last_position"]
    assert (position["lat"], position["lon"]) == (good[-1]["lat"], good[-1]["lon"])
    track = http.get("/api/v1/devices/t1/track").json()["items"]
    assert [p["ts"] for p in track] == [iso(datetime.fromisoformat(f["ts"])) for f in good]
    flagged = query(settings.database_url or "",
                    "SELECT ts FROM positions WHERE device_id = 't1' AND outlier")
    assert [iso(r[0]) for r in flagged] == [glitch["ts"]]


def test_an_outlier_never_reaches_the_geofences(settings: Settings) -> None:
    """A glitch first in a new device's batch, inside a fence: no enter, no exit."""
    eager = settings.model_copy(update={"geofence_debounce_s": 0.0})
    now = datetime.now(UTC).replace(microsecond=0)
    glitch = {"ts": iso(now - timedelta(seconds=60)), "lat": 53.5, "lon": 10.0}  # Hamburg
    good = fixes(now - timedelta(seconds=30), BERLIN, 5, every_s=5)
    with running_ingest(eager), running_api(eager) as base, \
            httpx.Client(base_url=base, headers=AUTH, timeout=10) as http:
        r = http.post("/api/v1/geofences", json={
            "type": "Feature", "geometry": {"type": "Point", "coordinates": [10.0, 53.5]},
            "properties": {"name": "hamburg", "radius_m": 5000}})
        assert r.status_code == 201, r.text
        publish(eager.mqtt_url or "", [(topic(eager, "t2"), json.dumps([glitch, *good])
                                        .encode())])
        wait_for(lambda: live_ts(http, "t2") == good[-1]["ts"])
        events = http.get("/api/v1/events?device_id=t2&type=geofence.*").json()["items"]
        assert events == []


def test_a_restarted_fleet_moves_on_the_map_within_a_few_fixes(
        settings: Settings, http: httpx.Client) -> None:
    """`up --simulate` restarted: each truck resumes 30 km back, a few seconds after its
    last fix; one fix per message as the simulator sends them."""
    now = datetime.now(UTC).replace(microsecond=0)
    before = fixes(now - timedelta(seconds=40), east(*BERLIN, 30_000), 20)
    publish(settings.mqtt_url or "", [(topic(settings, "sim-1"), json.dumps(f).encode())
                                      for f in before])
    wait_for(lambda: live_ts(http, "sim-1") == before[-1]["ts"])
    after = fixes(now - timedelta(seconds=15), BERLIN, 10)
    publish(settings.mqtt_url or "", [(topic(settings, "sim-1"), json.dumps(f).encode())
                                      for f in after])
    wait_for(lambda: live_ts(http, "sim-1") == after[-1]["ts"])
    position = device(http, "sim-1")["last_position"]
    assert position["lon"] == pytest.approx(after[-1]["lon"])
    flagged = query(settings.database_url or "", "SELECT ts FROM positions"
                    " WHERE device_id = 'sim-1' AND outlier ORDER BY ts")
    # at most the first two, stored flagged until three fixes agreed (none when the three
    # arrived in one batch)
    assert [iso(r[0]) for r in flagged] == [f["ts"] for f in after[:len(flagged)]]
    assert len(flagged) <= 2


# -- migrations at start ------------------------------------------------------------------------

@pytest.fixture
def empty_db(admin_db_url: str) -> Iterator[str]:
    name = f"shiptrack_empty_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_db_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield make_conninfo(admin_db_url, dbname=name)
    with psycopg.connect(admin_db_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_ingest_migrates_an_empty_database_at_start(settings: Settings, empty_db: str) -> None:
    fresh = settings.model_copy(update={"database_url": empty_db})
    with running_ingest(fresh):
        publish(fresh.mqtt_url or "", [(topic(fresh, "m1"), json.dumps(
            fixes(datetime.now(UTC) - timedelta(seconds=5), BERLIN, 1)[0]).encode())])
        wait_for(lambda: query(empty_db, "SELECT count(*) FROM positions")[0][0] == 1)
    versions = query(empty_db, "SELECT count(*) FROM schema_migrations")[0][0]
    assert versions >= 5


def test_api_is_not_ready_until_the_schema_is_current(settings: Settings,
                                                      empty_db: str) -> None:
    fresh = settings.model_copy(update={"database_url": empty_db})
    with psycopg.connect(empty_db, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))  # another migrator
        with running_api(fresh, ready=False) as base, httpx.Client(base_url=base) as client:
            wait_for(lambda: client.get("/readyz").status_code == 503)
            body = client.get("/readyz").json()
            assert body["status"] == "unavailable" and body["checks"]["schema"] == "migrating"
            holder.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
            wait_for(lambda: client.get("/readyz").status_code == 200, timeout=20)
            assert client.get("/readyz").json()["checks"]["schema"] == "ok"
            r = client.get("/api/v1/devices", headers=AUTH)
            assert r.status_code == 200 and r.json()["items"] == []


@pytest.mark.parametrize("command", ["ingest", "api", "migrate"])
def test_an_unreachable_database_is_one_line_and_a_non_zero_exit(command: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPTRACK_")}
    env |= {"SHIPTRACK_DATABASE_URL": "postgresql://postgres:secret@127.0.0.1:9/none",
            "SHIPTRACK_MQTT_URL": "mqtt://127.0.0.1:9", "COLUMNS": "200"}
    done = subprocess.run([sys.executable, "-m", "shiptrack", command], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: cannot reach the database at 127.0.0.1:9/none")
    assert "secret" not in lines[0]


def test_api_on_a_taken_port_is_one_line_and_a_non_zero_exit(settings: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPTRACK_")}
    env |= {"SHIPTRACK_DATABASE_URL": settings.database_url or "",
            "SHIPTRACK_MQTT_URL": settings.mqtt_url or "", "COLUMNS": "200"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "shiptrack", "api", "--port", str(port)],
                              env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port} for the API: in use (set "
        "SHIPTRACK_HTTP_PORT or --http-port)"]


# -- shipments: created_at and milestones in time order ----------------------------------------

def scan_topic(settings: Settings) -> str:
    return f"{settings.mqtt_topic_prefix}shiptrack/v1/scanners/hub-1/scan"


def shipment(http: httpx.Client, reference: str, **extra: Any) -> httpx.Response:
    return http.post("/api/v1/shipments", json={
        "reference": reference, "device_id": "truck-9",
        "origin": {"lat": 52.0, "lon": 13.0}, "destination": {"lat": 52.0, "lon": 13.5},
        **extra})


def test_created_at_is_checked(http: httpx.Client) -> None:
    future = iso(datetime.now(UTC) + timedelta(hours=1))
    for bad in (future, "yesterday", "2026-11-26T10:00:00"):  # future, not a date, no offset
        r = shipment(http, f"BAD-{bad}", created_at=bad)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] and "created_at" in r.json()["error"]["message"]
    assert http.get("/api/v1/shipments").json()["items"] == []  # nothing was made


def test_milestones_are_in_time_order_with_created_first(settings: Settings,
                                                         http: httpx.Client) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    created = now - timedelta(hours=1)
    late = shipment(http, "LATE-1", created_at=iso(created)).json()
    assert [(m["kind"], m["ts"]) for m in late["milestones"]] == [("created", iso(created))]
    (event,) = http.get("/api/v1/events", params={"shipment_id": late["id"]}).json()["items"]
    assert event["id"] == event_id("shipment.milestone", created, "truck-9", late["id"], None,
                                   "created")
    assert event["data"] == {"kind": "created", "source": "api", "reference": "LATE-1",
                             "status": "created"}
    default = shipment(http, "NOW-1").json()  # created now: the buffer below is older
    scans = [  # a scanner uploading its buffer: before and after the shipments were created
        {"ts": iso(now - timedelta(hours=2)), "shipment_ref": "LATE-1", "kind": "pickup"},
        {"ts": iso(now - timedelta(minutes=30)), "shipment_ref": "LATE-1", "kind": "hub"},
        {"ts": iso(now - timedelta(minutes=20)), "shipment_ref": "NOW-1", "kind": "pickup"},
        {"ts": iso(now - timedelta(minutes=10)), "shipment_ref": "NOW-1", "kind": "delivery"},
    ]
    publish(settings.mqtt_url or "", [(scan_topic(settings), json.dumps(s).encode())
                                      for s in scans])
    marker = {"ts": iso(datetime.now(UTC)), "shipment_ref": "NOW-1", "kind": "hub"}
    publish(settings.mqtt_url or "", [(scan_topic(settings), json.dumps(marker).encode())])

    def kinds(sid: str) -> list[str]:
        return [m["kind"] for m in http.get(f"/api/v1/shipments/{sid}").json()["milestones"]]

    wait_for(lambda: kinds(default["id"]) == ["created", "in_transit", "hub"])
    got = http.get(f"/api/v1/shipments/{late['id']}").json()
    assert [(m["kind"], m["ts"]) for m in got["milestones"]] == [
        ("created", iso(created)), ("in_transit", scans[1]["ts"]), ("hub", scans[1]["ts"])]
    assert got["status"] == "in_transit"
    stamps = [m["ts"] for m in http.get(f"/api/v1/shipments/{default['id']}")
              .json()["milestones"]]
    assert stamps == sorted(stamps)
    public = http.get(f"/api/v1/track/{late['tracking_token']}").json()
    assert [m["kind"] for m in public["milestones"]] == ["created", "in_transit", "hub"]


# -- track downsampling --------------------------------------------------------------------------

def test_a_track_of_1000_fixes_in_17_minutes_keeps_its_points(settings: Settings,
                                                              http: httpx.Client) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    drive = fixes(now - timedelta(seconds=1020), BERLIN, 1000, every_s=1.02, mps=15)
    publish(settings.mqtt_url or "", [(topic(settings, "long"), json.dumps(
        drive[k:k + 100]).encode()) for k in range(0, 1000, 100)])
    wait_for(lambda: query(settings.database_url or "", "SELECT count(*) FROM positions"
                           " WHERE device_id = 'long'")[0][0] == 1000)
    body = http.get("/api/v1/devices/long/track?max_points=100").json()  # default: 24 h
    assert body["downsampled"] and 95 <= len(body["items"]) <= 100
    assert body["items"][-1]["ts"] == iso(datetime.fromisoformat(drive[-1]["ts"]))
    half: dict[str, str | int] = {"max_points": 50, "to": iso(now),
                                  "from": iso(now - timedelta(seconds=510))}
    window = http.get("/api/v1/devices/long/track", params=half).json()
    assert 45 <= len(window["items"]) <= 50  # the second half, at its own resolution
