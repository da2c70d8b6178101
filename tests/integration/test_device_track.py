"""``GET /api/v1/devices/{id}/track``: a day of 1 Hz fixes downsampled on the database,
the same with TimescaleDB's time_bucket as with PostgreSQL's date_bin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from shiptrack.config import Settings
from tests.helpers import query, running_api

ADMIN = {"Authorization": "Bearer test-admin-token"}
DAY = datetime(2026, 3, 10, tzinfo=UTC)


def one_day_at_1hz(db: str, device: str, start: datetime) -> None:
    query(db, "SELECT shiptrack_ensure_positions_partitions(ARRAY[%s, %s]::timestamptz[])",
          (start, start + timedelta(days=1)))
    query(db, "INSERT INTO positions (device_id, ts, lat, lon, speed, heading, outlier)"
              " SELECT %s, %s + make_interval(secs => s), 50 + s / 86400.0, 8.0, 10.0, 90.0,"
              "        s = 43200"  # one GPS outlier at noon
              " FROM generate_series(0, 86399) AS s RETURNING 1", (device, start))
    query(db, "INSERT INTO devices (device_id, last_ts, lat, lon) VALUES (%s, %s, 51, 8)"
              " RETURNING 1", (device, start + timedelta(seconds=86399)))


def fetch(http: httpx.Client, url: str) -> dict[str, Any]:
    r = http.get(url, headers=ADMIN)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_day_of_1hz_comes_back_downsampled(settings: Settings) -> None:
    db = settings.database_url or ""
    one_day_at_1hz(db, "d1", DAY)
    span = "from=2026-03-10T00:00:00Z&to=2026-03-11T00:00:00Z"
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        body = fetch(http, f"/api/v1/devices/d1/track?{span}&max_points=1000")
        items = body["items"]
        assert body["downsampled"] and 990 <= len(items) <= 1000
        assert body["next_cursor"] is None and body["from"].startswith("2026-03-10T00:00:00")
        stamps = [datetime.fromisoformat(i["ts"]) for i in items]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
        assert stamps[-1] == DAY + timedelta(seconds=86399)  # the newest fix is kept
        assert DAY + timedelta(seconds=43200) not in stamps  # outliers never are
        assert set(items[0]) == {"ts", "lat", "lon", "speed", "heading"}

        small = fetch(http, f"/api/v1/devices/d1/track?{span}&max_points=10")
        assert len(small["items"]) == 10
        exact = fetch(http, "/api/v1/devices/d1/track?from=2026-03-10T00:00:00Z"
                               "&to=2026-03-10T00:00:59Z&max_points=60")
        assert not exact["downsampled"] and len(exact["items"]) == 60  # few: every fix
        offset = fetch(http, "/api/v1/devices/d1/track?from=2026-03-10T01:00:00%2B01:00"
                                "&to=2026-03-10T00:00:09Z")
        assert len(offset["items"]) == 10
        recent = fetch(http, "/api/v1/devices/d1/track")  # default: the last 24 h
        assert recent["items"] == []
        plain = body

    # the TimescaleDB path: time_bucket (stood in for by date_bin here, where the
    # extension is not installed) must cut the same buckets
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION time_bucket(bucket_width interval, ts timestamptz,"
                     " origin timestamptz) RETURNS timestamptz LANGUAGE sql IMMUTABLE"
                     " AS 'SELECT date_bin(bucket_width, ts, origin)'")
    query(db, "UPDATE shiptrack_meta SET value = 'timescale' WHERE key = 'storage_mode'"
              " RETURNING 1")
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        timescale = fetch(http, f"/api/v1/devices/d1/track?{span}&max_points=1000")
        assert timescale == plain


def test_default_window_is_the_last_24_hours(settings: Settings) -> None:
    db = settings.database_url or ""
    now = datetime.now(UTC).replace(microsecond=0)
    one_day_at_1hz(db, "d2", now - timedelta(hours=36))
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        body = fetch(http, "/api/v1/devices/d2/track?max_points=100")
        stamps = [datetime.fromisoformat(i["ts"]) for i in body["items"]]
        # data in the first half of the window only: the buckets span the data, not the
        # window, so all 100 points are used
        assert 99 <= len(stamps) <= 100
        assert min(stamps) >= now - timedelta(hours=24, seconds=5)
        assert max(stamps) == now - timedelta(hours=12, seconds=1)
