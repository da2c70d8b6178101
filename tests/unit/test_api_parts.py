"""Pure parts of the API: webhook signing, retry schedule, event cursor, time parsing,
scopes, security headers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from api.auth import Principal, expand_scopes, new_token
from api.errors import ApiError
from api.routes_devices import parse_rfc3339, track_window
from api.security import content_security_policy, is_page, parse_origins
from api.webhooks import backoff, contiguous, headers, new_secret, sign, wants


def test_signature_verifies_with_the_standard_webhooks_library() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    body = json.dumps({"id": "42", "type": "shipment.milestone", "data": {"kind": "pickup"}})
    hdrs = headers(secret, "42", body)
    assert hdrs["webhook-id"] == "42" and hdrs["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, hdrs) == json.loads(body)
    tampered = {**hdrs, "webhook-id": "43"}
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(secret).verify(body, tampered)


def test_signature_matches_the_specification_example() -> None:
    # the example of the Standard Webhooks specification (spec/standard-webhooks.md)
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"test": 2432232314}'
    assert sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == \
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_backoff_doubles_to_a_cap() -> None:
    assert [backoff(n, 5, 3600) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert backoff(20, 5, 3600) == 3600 and backoff(10_000, 5, 3600) == 3600


def test_event_types_filter() -> None:
    assert wants([], "anything")
    assert wants(["a.b"], "a.b") and not wants(["a.b"], "a.c")


def test_cursor_moves_over_contiguous_seqs_and_waits_on_gaps() -> None:
    assert contiguous([1, 2, 3], 0, None, 100.0) == (3, None)
    assert contiguous([1, 2, 4], 0, None, 100.0) == (2, 100.0)  # 3 not committed yet?
    assert contiguous([4], 2, 100.0, 105.0) == (0, 100.0)  # still waiting
    assert contiguous([4, 5], 2, 100.0, 111.0) == (2, None)  # gap older than 10 s: skip it
    assert contiguous([], 7, None, 1.0) == (0, None)


def test_rfc3339_is_strict() -> None:
    assert parse_rfc3339("2026-11-26T10:00:00Z", "to") == datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert parse_rfc3339("2026-11-26T12:00:00.123456789+02:00", "to") == datetime(
        2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)
    assert parse_rfc3339("2016-12-31T23:59:60Z", "to") == datetime(
        2016, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    with pytest.raises(ApiError):
        track_window(None, "0001-01-01T00:00:00Z")  # its default from is out of range
    for bad in ("2026-11-26", "1700000000", "2026-00-10T00:00:00Z",
                "2026-01-10T24:00:00Z", "2026-11-26T10:00:00", "2026-13-01T00:00:00Z",
                "2026-02-30T00:00:00Z", "yesterday", "0000-01-01T00:00:00Z"):
        with pytest.raises(ApiError) as info:
            parse_rfc3339(bad, "from")
        assert info.value.status == 422


def test_scopes_and_tokens() -> None:
    assert expand_scopes(["admin"]) == ["read", "write", "admin"]
    assert expand_scopes(["write", "read"]) == ["read", "write"]
    assert expand_scopes(["read"]) == ["read"]
    assert Principal("token", frozenset(["read"])).allows("read")
    assert not Principal("token", frozenset(["read"])).allows("write")
    a, b = new_token(), new_token()
    assert a != b and a.startswith("st_") and len(a) >= 40


def test_content_security_policy() -> None:
    csp = content_security_policy("127.0.0.1:8000")
    assert "frame-ancestors 'none'" in csp
    assert "img-src 'self' data: https://tile.openstreetmap.org" in csp
    assert "connect-src 'self' ws://127.0.0.1:8000 wss://127.0.0.1:8000" in csp
    assert "ws://" not in content_security_policy("evil.com; script-src *")
    assert is_page("/") and is_page("/t/abc") and is_page("/static/app.js")
    assert not is_page("/api/v1/devices")
    assert parse_origins(" https://a.example/, https://b.example ,") == [
        "https://a.example", "https://b.example"]


def test_a_short_admin_token_is_refused_with_a_clear_line(tmp_path: Path) -> None:
    from shiptrack.config import Settings
    from shiptrack.errors import ConfigError
    from shiptrack.paths import admin_token

    with pytest.raises(ConfigError, match="at least 24"):
        admin_token(Settings(admin_token="short-admin-token", data_dir=str(tmp_path)))
    long = "x" * 24
    assert admin_token(Settings(admin_token=long, data_dir=str(tmp_path))) == (long, False)
    made, created = admin_token(Settings(data_dir=str(tmp_path)))
    assert created and len(made) >= 24


def test_cli_api_refuses_a_short_admin_token(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPTRACK_")}
    env |= {"SHIPTRACK_ADMIN_TOKEN": "admin", "SHIPTRACK_DATA_DIR": str(tmp_path),
            "SHIPTRACK_DATABASE_URL": "postgresql://nowhere/x", "SHIPTRACK_MQTT_URL":
            "mqtt://127.0.0.1:1"}
    done = subprocess.run([sys.executable, "-m", "shiptrack", "api"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "SHIPTRACK_ADMIN_TOKEN is 5 characters; use at least 24" in done.stdout + done.stderr
