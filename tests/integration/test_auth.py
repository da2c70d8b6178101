"""Auth against the real API: token lifecycle, the route x credential matrix, errors in
the SPEC's shape, security headers and CORS."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from typing import Any

import httpx
import pytest
import websockets
from fastapi import routing

from api.app import create_app
from api.auth import REQUIRED, SCOPES
from shiptrack.config import Settings
from tests.helpers import query, running_api

ADMIN = {"Authorization": "Bearer test-admin-token"}
PATH_SAMPLES = {"device_id": "dev-1", "token_id": "tok_0000000000000000",
                "webhook_id": "wh_0000000000000000"}
PUBLIC = ("/api/v1/track/", "/api/v1/carriers/")  # carriers: signatures of their own


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_token(http: httpx.Client, scope: str, **extra: Any) -> dict[str, Any]:
    r = http.post("/api/v1/tokens", json={"name": f"{scope} token", "scopes": [scope], **extra},
                  headers=ADMIN)
    assert r.status_code == 201, r.text
    return dict(r.json())


def api_routes(settings: Settings) -> list[Any]:
    """Every HTTP route of the app (whichever engineer added it) under /api/, but the
    public tracking ones."""
    app = create_app(settings, "test-admin-token")  # only to list its routes
    if hasattr(routing, "iter_route_contexts"):  # FastAPI >= 0.130: included routers
        routes = [c for c in routing.iter_route_contexts(app.routes)
                  if isinstance(c.original_route, routing.APIRoute)]
    else:
        routes = [r for r in app.routes if isinstance(r, routing.APIRoute)]
    return [r for r in routes if r.path.startswith("/api/") and not r.path.startswith(PUBLIC)]


def add_shipment(db: str) -> str:
    """A shipment in the database; returns its tracking token."""
    token = secrets.token_urlsafe(32)
    query(db, "INSERT INTO shipments (id, reference, device_id, tracking_token, origin,"
              " destination) VALUES ('shp_auth', 'AUTH-1', 'dev-1', %s, %s, %s) RETURNING 1",
          (token, '{"lat": 1, "lon": 1}', '{"lat": 2, "lon": 2}'))
    return token


def needed_scope(route: Any, method: str) -> str | None:
    """The scope the route's auth dependency asks for, None when it has none of ours."""
    for dep in route.dependant.dependencies:
        if dep.call in REQUIRED:
            scope = REQUIRED[dep.call]
            return scope or ("read" if method in ("GET", "HEAD") else "write")
    return None


def test_tokens_are_made_listed_revoked_and_stored_hashed(settings: Settings) -> None:
    assert settings.database_url
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        reader = make_token(http, "read")
        assert reader["scopes"] == ["read"] and reader["token"].startswith("st_")
        writer = make_token(http, "write", expires_at="2999-01-01T00:00:00Z")
        assert writer["scopes"] == ["read", "write"]
        rows = query(settings.database_url, "SELECT token_hash FROM api_tokens ORDER BY id")
        hashes = {bytes(r[0]) for r in rows}
        assert hashlib.sha256(reader["token"].encode()).digest() in hashes
        dump = str(query(settings.database_url, "SELECT * FROM api_tokens"))
        assert reader["token"] not in dump and writer["token"] not in dump

        listed = http.get("/api/v1/tokens", headers=ADMIN).json()
        assert {t["id"] for t in listed["items"]} == {reader["id"], writer["id"]}
        assert all("token" not in t for t in listed["items"])
        page = http.get("/api/v1/tokens?limit=1", headers=ADMIN).json()
        assert len(page["items"]) == 1 and page["next_cursor"]

        assert http.get("/api/v1/devices", headers=bearer(reader["token"])).status_code == 200
        r = http.post("/api/v1/tokens", json={"name": "x"}, headers=bearer(writer["token"]))
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        used = http.get("/api/v1/tokens", headers=ADMIN).json()["items"]
        assert any(t["last_used_at"] for t in used)

        assert http.delete(f"/api/v1/tokens/{reader['id']}", headers=ADMIN).status_code == 204
        assert http.delete(f"/api/v1/tokens/{reader['id']}", headers=ADMIN).status_code == 404
        r = http.get("/api/v1/devices", headers=bearer(reader["token"]))
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"

        expired = make_token(http, "read", expires_at="2001-01-01T00:00:00Z")
        assert http.get("/api/v1/devices", headers=bearer(expired["token"])).status_code == 401
        for bad in ({"name": ""}, {"name": "x", "scopes": ["root"]}, {"name": "a\x00b"},
                    {"name": "x", "scopes": []}, {"name": "x", "extra": 1},
                    {"name": "x", "expires_at": "tomorrow"}, {"name": "x", "expires_at":
                                                               "2030-01-01T00:00:00"}):
            r = http.post("/api/v1/tokens", json=bad, headers=ADMIN)
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid", bad
        r = http.post("/api/v1/tokens", content=b"{not json", headers={
            **ADMIN, "content-type": "application/json"})
        assert r.status_code == 422 and "error" in r.json()


def test_every_route_by_every_credential(settings: Settings) -> None:
    routes = api_routes(settings)
    assert len(routes) >= 8
    tracking = add_shipment(settings.database_url or "")
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        tokens = {scope: make_token(http, scope)["token"] for scope in SCOPES}
        assert http.get(f"/api/v1/track/{tracking}").status_code == 200
        checked = 0
        for route in routes:
            for method in sorted(route.methods):
                url = re.sub(r"\{(\w+)\}", lambda m: PATH_SAMPLES.get(m.group(1), "1"),
                             route.path)
                body = {} if method in ("POST", "PUT", "PATCH") else None

                def call(headers: dict[str, str], m: str = method, u: str = url,
                         b: Any = body) -> httpx.Response:
                    return http.request(m, u, json=b, headers=headers)

                for creds in ({}, bearer("wrong"), bearer("st_" + "A" * 43), bearer(tracking),
                              {"Authorization": "Basic dXNlcjpwYXNz"}):
                    r = call(creds)
                    assert r.status_code == 401, (method, url, creds, r.text)
                    assert r.json()["error"]["code"] == "unauthorized"
                scope = needed_scope(route, method)
                if scope is None:
                    continue  # auth of its own (owntracks: admin token); 401s checked above
                for have, token in tokens.items():
                    r = call(bearer(token))
                    if SCOPES.index(have) < SCOPES.index(scope):
                        assert r.status_code == 403, (method, url, have, r.text)
                    else:
                        assert r.status_code not in (401, 403), (method, url, have, r.text)
                    checked += 1
                r = call(ADMIN)
                assert r.status_code not in (401, 403, 500), (method, url, r.text)
        assert checked >= 3 * 8


def test_fleet_stream_auth(settings: Settings) -> None:
    tracking = add_shipment(settings.database_url or "")

    async def scenario(base: str, token: str) -> None:
        url = base.replace("http", "ws") + "/ws/fleet"
        for suffix in ("", "?token=wrong", "?token=st_" + "A" * 43, f"?token={tracking}"):
            with pytest.raises(websockets.InvalidStatus) as info:
                async with websockets.connect(url + suffix):
                    pass
            assert info.value.response.status_code == 401
        async with websockets.connect(url + f"?token={token}") as ws:
            assert '"snapshot"' in str(await asyncio.wait_for(ws.recv(), 5))

    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        asyncio.run(scenario(base, make_token(http, "read")["token"]))


def test_errors_have_the_spec_shape_and_never_500(settings: Settings) -> None:
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        cases = [
            ("GET", "/api/v1/nope", 404), ("DELETE", "/api/v1/devices", 405),
            ("GET", "/api/v1/devices?limit=0", 422), ("GET", "/api/v1/devices?limit=1e999", 422),
            ("GET", "/api/v1/devices/" + "x" * 65, 422), ("GET", "/api/v1/devices/a%00b", 422),
            ("GET", "/api/v1/devices/unknown", 404),
            ("GET", "/api/v1/devices/unknown/track", 404),
            ("GET", "/api/v1/devices/d/track?from=yesterday", 422),
            ("GET", "/api/v1/devices/d/track?to=2026-02-30T00:00:00Z", 422),
            ("GET", "/api/v1/devices/d/track?max_points=0", 422),
            ("GET", "/api/v1/devices/d/track?max_points=10001", 422),
            ("GET", "/api/v1/devices/d/track?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
             422),
            ("GET", "/api/v1/tokens?cursor=%%%", 400), ("DELETE", "/api/v1/tokens/nope", 422),
            ("POST", "/api/v1/webhooks", 422),
        ]
        for method, url, status in cases:
            r = http.request(method, url, headers=ADMIN)
            assert r.status_code == status, (method, url, r.text)
            err = r.json()["error"]
            assert isinstance(err["code"], str) and isinstance(err["message"], str)


def test_security_headers_and_cors(settings: Settings) -> None:
    cors = settings.model_copy(update={"cors_origins": "https://shop.example"})
    with running_api(cors) as base, httpx.Client(base_url=base) as http:
        page = http.get("/t/some-token")
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "https://tile.openstreetmap.org" in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["x-frame-options"] == "DENY"
        assert "content-security-policy" in http.get("/").headers
        api = http.get("/api/v1/devices", headers={**ADMIN, "Origin": "https://shop.example"})
        assert api.headers["access-control-allow-origin"] == "https://shop.example"
        assert api.headers["x-content-type-options"] == "nosniff"
        pre = http.options("/api/v1/devices", headers={
            "Origin": "https://shop.example", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
        assert pre.status_code == 200
        other = http.get("/api/v1/devices", headers={**ADMIN, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        r = http.get("/api/v1/devices", headers={**ADMIN, "Origin": "https://shop.example"})
        assert "access-control-allow-origin" not in r.headers  # CORS off by default
