"""Auth against the real API: token lifecycle, the route x credential matrix, errors in
the SPEC's shape, security headers and CORS."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from typing import Any

import httpx
import pytest
import websockets
from fastapi import routing

from api.app import create_app
from api.auth import ALL_SCOPES, REQUIRED, SCOPES
from shiptrack.config import Settings
from tests.helpers import query, running_api

ADMIN = {"Authorization": "Bearer test-admin-token"}
PATH_SAMPLES = {"device_id": "dev-1", "token_id": "tok_0000000000000000",
                "webhook_id": "wh_0000000000000000", "scanner_id": "dock-1", "user": "alice"}
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
    routes = [c for c in routing.iter_route_contexts(app.routes)  # with included routers
              if isinstance(c.original_route, routing.APIRoute)]
    return [r for r in routes
            if r.path and r.path.startswith("/api/") and not r.path.startswith(PUBLIC)]


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


def grants(have: str, needed: str) -> bool:
    """read < write < admin; webhooks stands alone; admin has every scope."""
    if have in ("admin", needed):
        return True
    return have in SCOPES and needed in SCOPES and SCOPES.index(have) >= SCOPES.index(needed)


def test_every_route_by_every_credential(settings: Settings) -> None:
    settings = settings.model_copy(update={"auth_fail_limit": 0})  # hundreds of bad tokens
    routes = api_routes(settings)
    assert len(routes) >= 8
    tracking = add_shipment(settings.database_url or "")
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        tokens = {scope: make_token(http, scope)["token"] for scope in ALL_SCOPES}
        assert http.get(f"/api/v1/track/{tracking}").status_code == 200
        checked = 0
        for route in routes:
            for method in sorted(route.methods):
                url = re.sub(r"\{(\w+)\}", lambda m: PATH_SAMPLES.get(m.group(1), "1"),
                             route.path)
                body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None

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
                    if not grants(have, scope):
                        assert r.status_code == 403, (method, url, have, r.text)
                    else:
                        assert r.status_code not in (401, 403), (method, url, have, r.text)
                    checked += 1
                r = call(ADMIN)
                assert r.status_code not in (401, 403, 500), (method, url, r.text)
        assert checked >= 4 * 8
        needed = {needed_scope(r, m) for r in routes for m in r.methods}
        assert {"read", "write", "admin", "webhooks"} <= needed


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
        assert api.headers["cache-control"] == "no-store"  # every /api/ answer
        assert "cache-control" not in page.headers or page.headers["cache-control"] != \
            "no-store"
        pre = http.options("/api/v1/devices", headers={
            "Origin": "https://shop.example", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
        assert pre.status_code == 200
        other = http.get("/api/v1/devices", headers={**ADMIN, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        r = http.get("/api/v1/devices", headers={**ADMIN, "Origin": "https://shop.example"})
        assert "access-control-allow-origin" not in r.headers  # CORS off by default


def test_webhooks_scope_opens_webhooks_only(settings: Settings) -> None:
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        hooks = bearer(make_token(http, "webhooks")["token"])
        assert make_token(http, "admin")["scopes"] == ["read", "write", "admin"]
        r = http.post("/api/v1/webhooks", headers=hooks,
                      json={"url": "https://hooks.example.com/shiptrack"})
        assert r.status_code == 201, r.text
        assert r.headers["cache-control"] == "no-store"
        assert http.get("/api/v1/webhooks", headers=hooks).json()["items"][0]["id"] == \
            r.json()["id"]
        assert http.delete(f"/api/v1/webhooks/{r.json()['id']}", headers=hooks
                           ).status_code == 204
        for method, url in (("GET", "/api/v1/devices"), ("GET", "/api/v1/tokens"),
                            ("POST", "/api/v1/geofences")):
            assert http.request(method, url, headers=hooks, json={}).status_code == 403, url
        writer = bearer(make_token(http, "write")["token"])
        assert http.get("/api/v1/webhooks", headers=writer).status_code == 403
        assert http.get("/api/v1/webhooks", headers=ADMIN).status_code == 200  # admin: all


def test_webhooks_to_private_addresses_are_refused(settings: Settings) -> None:
    urls = ["http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/x",
            "http://192.168.0.10/x", "http://169.254.169.254/latest/meta-data",
            "http://[::1]/x", "http://[fe80::1]/x", "http://[::ffff:127.0.0.1]/x",
            "http://100.64.0.1/x", "http://0.0.0.0/x"]
    with running_api(settings) as base, httpx.Client(base_url=base, headers=ADMIN) as http:
        for url in urls:
            r = http.post("/api/v1/webhooks", json={"url": url})
            assert r.status_code == 422, (url, r.text)
            assert r.json()["error"]["code"] == "private_address"
            assert "SHIPTRACK_WEBHOOK_ALLOW_PRIVATE" in r.json()["error"]["message"]
        assert http.post("/api/v1/webhooks", json={"url": "https://93.184.215.14/x"}
                         ).status_code == 201
        assert len(http.get("/api/v1/webhooks").json()["items"]) == 1
    allowed = settings.model_copy(update={"webhook_allow_private": True})
    with running_api(allowed) as base, httpx.Client(base_url=base, headers=ADMIN) as http:
        assert http.post("/api/v1/webhooks", json={"url": urls[0]}).status_code == 201


def test_repeated_bad_credentials_get_429_with_retry_after(settings: Settings) -> None:
    strict = settings.model_copy(update={"auth_fail_limit": 5, "auth_fail_window_s": 600})
    with running_api(strict) as base, httpx.Client(base_url=base) as http:
        good = bearer(make_token(http, "read")["token"])
        for _ in range(5):
            assert http.get("/api/v1/devices", headers=bearer("st_wrong")).status_code == 401
        for headers in (bearer("st_wrong"), good, ADMIN):  # even a right guess is held back
            r = http.get("/api/v1/devices", headers=headers)
            assert r.status_code == 429, r.text
            assert r.json()["error"]["code"] == "rate_limited"
            assert 1 <= int(r.headers["retry-after"]) <= 600
        r = http.post("/api/v1/owntracks?u=a&d=b", headers=bearer("st_wrong"), json={})
        assert r.status_code == 429

        async def stream() -> None:
            url = base.replace("http", "ws") + "/ws/fleet?token=st_wrong"
            with pytest.raises(websockets.InvalidStatus) as info:
                async with websockets.connect(url):
                    pass
            assert info.value.response.status_code == 429
            assert int(info.value.response.headers["retry-after"]) >= 1

        asyncio.run(stream())
        assert http.get("/api/v1/track/unknown-token").status_code == 404  # public: not held


def test_fleet_stream_tickets_are_single_use_and_short_lived(settings: Settings) -> None:
    short = settings.model_copy(update={"ws_ticket_seconds": 1})

    async def open_with(base: str, ticket: str) -> int | None:
        url = base.replace("http", "ws") + f"/ws/fleet?ticket={ticket}"
        try:
            async with websockets.connect(url) as ws:
                assert '"snapshot"' in str(await asyncio.wait_for(ws.recv(), 5))
                return None
        except websockets.InvalidStatus as exc:
            return exc.response.status_code

    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        reader = make_token(http, "read")
        r = http.post("/api/v1/ws-tickets", headers=bearer(reader["token"]))
        assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
        ticket = r.json()["ticket"]
        assert ticket.startswith("wst_") and r.json()["expires_at"]
        assert asyncio.run(open_with(base, ticket)) is None
        assert asyncio.run(open_with(base, ticket)) == 401, "a ticket opens one stream"
        assert http.post("/api/v1/ws-tickets").status_code == 401
        hooks = make_token(http, "webhooks")["token"]
        assert http.post("/api/v1/ws-tickets", headers=bearer(hooks)).status_code == 403
        revoked = http.post("/api/v1/ws-tickets", headers=bearer(reader["token"])).json()
        http.delete(f"/api/v1/tokens/{reader['id']}", headers=ADMIN)
        assert asyncio.run(open_with(base, revoked["ticket"])) == 401
        stored = str(query(settings.database_url or "", "SELECT * FROM ws_tickets"))
        assert revoked["ticket"] not in stored
    with running_api(short) as base, httpx.Client(base_url=base) as http:
        ticket = http.post("/api/v1/ws-tickets", headers=ADMIN).json()["ticket"]
        query(settings.database_url or "", "UPDATE ws_tickets SET expires_at = now()"
              " - interval '1 second' RETURNING 1")  # as if its second had passed
        assert asyncio.run(open_with(base, ticket)) == 401


def test_tokens_never_reach_the_access_log(settings: Settings,
                                           caplog: pytest.LogCaptureFixture) -> None:
    async def stream(base: str) -> None:
        url = base.replace("http", "ws") + "/ws/fleet?token=test-admin-token"
        async with websockets.connect(url) as ws:
            await asyncio.wait_for(ws.recv(), 5)

    loggers = [logging.getLogger(n) for n in ("uvicorn.access", "uvicorn.error")]
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        for logger in loggers:  # uvicorn's own config: level and handlers of its own
            logger.setLevel(logging.INFO)
            logger.addHandler(caplog.handler)
        try:
            http.get("/api/v1/devices?token=secret-in-query&x=1", headers=ADMIN)
            http.get("/t/page?ticket=wst_secret")
            asyncio.run(stream(base))
        finally:
            for logger in loggers:
                logger.removeHandler(caplog.handler)
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("uvicorn")]
    assert any("/api/v1/devices?token=[redacted]&x=1" in line for line in lines), lines
    assert any("/ws/fleet?token=[redacted]" in line for line in lines), lines
    text = "\n".join(lines)
    assert "secret-in-query" not in text and "wst_secret" not in text
    assert "test-admin-token" not in text
