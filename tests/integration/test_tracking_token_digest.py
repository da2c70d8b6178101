"""Tracking tokens are kept as digests (migration 0008), like API tokens: links made
before the migration keep working, no plaintext stays; new tokens are made from the
shipment id with the server's key, so the API can show them again."""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from shiptrack.config import Settings
from shiptrack.db import migrate as migrations
from shiptrack.tracking_tokens import key_from, token_for
from tests.helpers import query, running_api

ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture
def old_db(admin_db_url: str) -> Iterator[str]:
    """A database with the migrations before 0008 only."""
    name = f"shiptrack_old_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_db_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_conninfo(admin_db_url, dbname=name)
    with psycopg.connect(url, autocommit=True) as conn:
        mode = migrations._mode(conn)
        conn.execute("CREATE TABLE schema_migrations (version integer PRIMARY KEY,"
                     " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        for mig in migrations.available(mode):
            if mig.version < 8:
                conn.execute(mig.sql.encode())
                conn.execute("INSERT INTO schema_migrations VALUES (%s, %s)",
                             (mig.version, mig.name))
    yield url
    with psycopg.connect(admin_db_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_old_links_keep_working_and_only_digests_are_kept(old_db: str,
                                                          settings: Settings) -> None:
    old_token = secrets.token_urlsafe(32)
    query(old_db, "INSERT INTO shipments (id, reference, device_id, tracking_token, origin,"
                  " destination) VALUES ('shp_old', 'OLD-1', 'dev-1', %s, %s, %s) RETURNING 1",
          (old_token, json.dumps({"lat": 1, "lon": 1}), json.dumps({"lat": 2, "lon": 2})))
    assert migrations.migrate(old_db)[:2] == ["0008_identity", "0009_readonly_role"]
    [(plain, digest)] = query(old_db, "SELECT tracking_token, tracking_token_hash"
                                      " FROM shipments")
    assert plain is None and bytes(digest) == hashlib.sha256(old_token.encode()).digest()

    with running_api(settings.model_copy(update={"database_url": old_db})) as base, \
            httpx.Client(base_url=base) as http:
        r = http.get(f"/api/v1/track/{old_token}")
        assert r.status_code == 200 and r.json()["reference"] == "OLD-1"
        assert http.get("/api/v1/shipments/shp_old", headers=ADMIN).json()[
            "tracking_token"] is None
        made = http.post("/api/v1/shipments", headers=ADMIN, json={
            "reference": "NEW-1", "device_id": "dev-2", "origin": {"lat": 1, "lon": 1},
            "destination": {"lat": 2, "lon": 2}})
        assert made.status_code == 201, made.text
        assert made.headers["cache-control"] == "no-store"
        token = made.json()["tracking_token"]
        assert made.json()["tracking_url"] == f"/t/{token}"
        assert token == token_for(key_from("test-admin-token"), made.json()["id"])
        again = http.get(f"/api/v1/shipments/{made.json()['id']}", headers=ADMIN).json()
        assert (again["tracking_token"], again["tracking_url"]) == (token, f"/t/{token}")
        assert http.get(f"/api/v1/track/{token}").json()["reference"] == "NEW-1"
        assert http.get(f"/api/v1/track/{token[:-1]}x").status_code == 404
        listed = http.get("/api/v1/shipments", headers=ADMIN).json()["items"]
        assert {s["id"]: s["tracking_token"] for s in listed} == {
            "shp_old": None, made.json()["id"]: token}
    dump = str(query(old_db, "SELECT * FROM shipments"))
    assert token not in dump and old_token not in dump

    # with SHIPTRACK_TRACKING_KEY set, links no longer depend on the admin token
    keyed = settings.model_copy(update={"database_url": old_db, "tracking_key": "k" * 32})
    with running_api(keyed) as base, httpx.Client(base_url=base, headers=ADMIN) as http:
        ship = http.post("/api/v1/shipments", json={
            "reference": "NEW-2", "device_id": "dev-3", "origin": {"lat": 1, "lon": 1},
            "destination": {"lat": 2, "lon": 2}}).json()
        assert ship["tracking_token"] == token_for(key_from("k" * 32), ship["id"])
        assert http.get(f"/api/v1/track/{ship['tracking_token']}").status_code == 200
        assert http.get(f"/api/v1/shipments/{made.json()['id']}").json()[
            "tracking_token"] is None, "made with another key: not shown, still opens"
        assert http.get(f"/api/v1/track/{token}").status_code == 200
