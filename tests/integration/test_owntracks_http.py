"""OwnTracks HTTP mode, as the real app sends it: through the broker into positions."""

from __future__ import annotations

import base64
import json
import time

import httpx

from shiptrack.config import Settings
from tests.helpers import query, running_api, running_ingest, wait_for

NOW = int(time.time())
# what the OwnTracks Android app POSTs in HTTP mode (fields from its JSON documentation)
APP_BODY = {"_type": "location", "acc": 12, "alt": 38, "batt": 81, "bs": 1, "conn": "m",
            "lat": 52.3702, "lon": 4.8952, "tid": "jd", "tst": NOW - 60, "vac": 3, "vel": 54,
            "cog": 180, "t": "p", "m": 1}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def post(http: httpx.Client, body: object, **kwargs: object) -> httpx.Response:
    """POST, retrying briefly while the API's broker connection comes up (503)."""
    deadline = time.monotonic() + 10
    while True:
        r = http.post("/api/v1/owntracks", content=json.dumps(body), **kwargs)  # type: ignore[arg-type]
        if r.status_code != 503 or time.monotonic() > deadline:
            return r
        time.sleep(0.1)


def test_http_mode_with_headers_and_basic_auth_lands_in_positions(settings: Settings) -> None:
    assert settings.database_url
    with running_ingest(settings), running_api(settings) as base, \
            httpx.Client(base_url=base) as http:
        r = post(http, APP_BODY, headers={
            "X-Limit-U": "jane", "X-Limit-D": "phone",
            "Authorization": basic("jane", "test-admin-token")})
        assert (r.status_code, r.json()) == (200, [])
        later = dict(APP_BODY, tst=NOW - 30, lat=52.371)
        r = post(http, [later, {"_type": "lwt", "tst": NOW}], params={"u": "jane", "d": "phone"},
                 headers={"Authorization": "Bearer test-admin-token"})
        assert (r.status_code, r.json()) == (200, [])
        wait_for(lambda: query(settings.database_url or "",
                               "SELECT count(*) FROM positions")[0][0] == 2)
    rows = query(settings.database_url,
                 "SELECT device_id, lat, speed, battery, heading FROM positions ORDER BY ts")
    assert rows[0] == ("owntracks.jane.phone", 52.3702, 15.0, 0.81, 180.0)
    assert rows[1][1] == 52.371
    assert query(settings.database_url, "SELECT count(*) FROM dead_letters")[0][0] == 0


def test_http_mode_refusals(settings: Settings) -> None:
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        ok_auth = {"Authorization": "Bearer test-admin-token"}
        r = post(http, APP_BODY, params={"u": "jane", "d": "phone"})
        assert r.status_code == 401
        r = post(http, APP_BODY, params={"u": "jane", "d": "phone"},
                 headers={"Authorization": basic("jane", "wrong")})
        assert r.status_code == 401
        r = post(http, APP_BODY, headers=ok_auth)
        assert r.status_code == 400 and r.json()["error"]["code"] == "missing_identity"
        r = post(http, APP_BODY, params={"u": "ja ne", "d": "phone"}, headers=ok_auth)
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_identity"
        r = http.post("/api/v1/owntracks?u=a&d=b", content=b"{nope", headers=ok_auth)
        assert r.status_code == 400 and r.json()["error"]["code"] == "not_json"
        big = b"[" + b" " * (settings.max_payload_bytes + 1) + b"]"
        r = http.post("/api/v1/owntracks?u=a&d=b", content=big, headers=ok_auth)
        assert r.status_code == 413


def test_http_mode_takes_a_write_token_as_basic_password_and_refuses_read_only(
    settings: Settings,
) -> None:
    with running_api(settings) as base, httpx.Client(base_url=base) as http:
        admin = {"Authorization": "Bearer test-admin-token"}
        tokens = {}
        for scope in ("read", "write"):
            r = http.post("/api/v1/tokens", json={"name": f"phone-{scope}", "scopes": [scope]},
                          headers=admin)
            assert r.status_code == 201, r.text
            tokens[scope] = r.json()["token"]
        params = {"u": "jane", "d": "phone"}
        r = post(http, APP_BODY, params=params,
                 headers={"Authorization": basic("jane", tokens["write"])})
        assert (r.status_code, r.json()) == (200, [])
        r = post(http, APP_BODY, params=params,
                 headers={"Authorization": basic("jane", tokens["read"])})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
