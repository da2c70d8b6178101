"""Pure parts of device identity and least privilege: broker roles and ACLs, the plugin's
password hashes, control answers, the bad-credentials limiter, scopes, log redaction and
webhook targets."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ipaddress
import json
import logging
from pathlib import Path

import pytest

from api.auth import Principal, expand_scopes
from api.auth_limit import FailureLimiter
from api.log_redact import RedactSecrets, redact
from api.webhook_targets import is_public, refusal
from shiptrack import broker_identity as bi


def topics(acls: list[dict[str, object]], kind: str) -> list[object]:
    return [a["topic"] for a in acls if a["acltype"] == kind]


def test_each_kind_publishes_only_its_own_topic() -> None:
    device = bi.subject_acls("device", "truck:1", "p/")
    assert topics(device, "publishClientSend") == ["p/shiptrack/v1/devices/truck:1/position"]
    assert topics(device, "subscribePattern") == []
    assert topics(bi.subject_acls("scanner", "dock-1"), "publishClientSend") == [
        "shiptrack/v1/scanners/dock-1/scan"]
    owntracks = bi.subject_acls("owntracks", "alice")
    assert topics(owntracks, "publishClientSend") == ["owntracks/alice/+", "owntracks/alice/+/#"]
    assert topics(owntracks, "subscribePattern") == ["owntracks/alice/#"]
    everything = [a["topic"] for k in bi.KINDS for a in bi.subject_acls(k, "x")]
    assert not any("live" in str(t) or t == "#" for t in everything)


def test_usernames_keep_the_kinds_apart_and_ids_are_checked() -> None:
    assert bi.username("device", "scanner.x") == "device.scanner.x"
    assert bi.username("scanner", "x") == "scanner.x"
    assert len({bi.username(k, "a") for k in bi.KINDS}) == 3
    for bad in ("", "a/b", "#", "+", "x" * 65, "a b"):
        with pytest.raises(bi.IdentityError):
            bi.username("device", bad)


def test_services_read_and_write_what_their_job_needs() -> None:
    ingest = bi.ingest_acls("p/")
    assert topics(ingest, "publishClientSend") == ["p/shiptrack/v1/live/#"]
    assert "p/shiptrack/v1/devices/+/position" in topics(ingest, "subscribePattern")
    assert "$share/+/p/owntracks/+/+" in topics(ingest, "subscribePattern")
    api = bi.api_acls("p/")
    assert "p/shiptrack/v1/live/#" in topics(api, "subscribePattern")
    assert "p/owntracks/+/+" in topics(api, "publishClientSend")
    assert "p/shiptrack/v1/live/#" not in topics(api, "publishClientSend")
    assert topics(bi.simulator_acls(["sim-0001"]), "publishClientSend") == [
        "shiptrack/v1/devices/sim-0001/position"]


def test_issue_pins_the_client_id_and_replaces_the_old_login() -> None:
    commands = bi.issue_commands("device", "d1", "pw")
    assert [c["command"] for c in commands] == [
        "deleteClient", "deleteRole", "createRole", "createClient"]
    assert commands[-1]["clientid"] == commands[-1]["username"] == "device.d1"
    assert [c["command"] for c in bi.revoke_commands("device", "d1")] == [
        "deleteClient", "deleteRole"]


def test_control_answers_are_matched_and_clearing_errors_ignored() -> None:
    commands = bi.revoke_commands("device", "d1")
    token, payload = bi.control_message(commands)
    assert payload.count(token.encode()) == 2
    partial = {"responses": [{"command": "deleteClient", "correlationData": f"{token}:0"}]}
    assert bi.control_errors(commands, partial, token) is None
    other = {"responses": [{"correlationData": "someone-else:0"}]}
    assert bi.control_errors(commands, other, token) is None
    done = {"responses": [
        {"command": "deleteClient", "correlationData": f"{token}:0", "error": "Client not found"},
        {"command": "deleteRole", "correlationData": f"{token}:1"}]}
    assert bi.control_errors(commands, done, token) == []
    failed = {"responses": [
        {"command": "deleteClient", "correlationData": f"{token}:0"},
        {"command": "deleteRole", "correlationData": f"{token}:1", "error": "Internal error"}]}
    assert bi.control_errors(commands, failed, token) == ["deleteRole: Internal error"]


def test_password_hash_is_the_plugins_pbkdf2_sha512() -> None:
    salt = b"0123456789ab"
    stored = bi.hash_password("secret", salt)
    assert stored["iterations"] == 101
    assert base64.b64decode(stored["salt"]) == salt
    assert base64.b64decode(stored["password"]) == hashlib.pbkdf2_hmac(
        "sha512", b"secret", salt, 101)
    assert "secret" not in str(bi.hash_password("secret"))


def test_service_config_keeps_issued_logins_and_resets_the_services() -> None:
    first = bi.service_config(None, {"ingest": "a", "api": "b", "simulator": "c"}, "",
                              ["sim-0001"])
    assert sorted(c["username"] for c in first["clients"]) == ["api", "ingest", "simulator"]
    issued = {**first, "clients": [*first["clients"], {"username": "device.d1"}],
              "roles": [*first["roles"], {"rolename": "shiptrack:device.d1"}]}
    again = bi.service_config(issued, {"ingest": "x", "api": "y", "simulator": "z"})
    assert sorted(c["username"] for c in again["clients"]) == ["api", "device.d1", "ingest"]
    assert "shiptrack:device.d1" in [r["rolename"] for r in again["roles"]]
    assert again["defaultACLAccess"]["subscribe"] is False
    assert again["defaultACLAccess"]["publishClientSend"] is False


def test_limiter_holds_a_client_back_after_the_limit_until_the_window_passes() -> None:
    limiter = FailureLimiter(3, 60.0)
    for t in (0.0, 1.0, 2.0):
        assert limiter.retry_after("a", t) is None
        limiter.failed("a", t)
    assert limiter.retry_after("a", 3.0) == 57
    assert limiter.retry_after("b", 3.0) is None, "per client"
    assert limiter.retry_after("a", 60.5) is None, "the oldest failure left the window"
    off = FailureLimiter(0, 60.0)
    for t in range(100):
        off.failed("a", float(t))
    assert off.retry_after("a", 100.0) is None


def test_scopes_webhooks_stands_alone_and_admin_keeps_everything() -> None:
    assert expand_scopes(["webhooks"]) == ["webhooks"]
    assert expand_scopes(["read", "webhooks"]) == ["read", "webhooks"]
    assert expand_scopes(["admin"]) == ["read", "write", "admin"]
    hooks = Principal("token", frozenset(["webhooks"]))
    assert hooks.allows("webhooks") and not hooks.allows("read")
    assert Principal("token", frozenset(["read", "write", "admin"])).allows("webhooks")


def test_redaction_of_token_and_ticket_values() -> None:
    assert redact('"GET /ws/fleet?token=abc&x=1 HTTP/1.1"') == (
        '"GET /ws/fleet?token=[redacted]&x=1 HTTP/1.1"')
    assert redact("/ws/fleet?x=1&ticket=wst_abc") == "/ws/fleet?x=1&ticket=[redacted]"
    assert redact("/api/v1/devices?tokens=1") == "/api/v1/devices?tokens=1"
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s"',
                               ("1.2.3.4", "GET", "/a?TOKEN=s3cret"), None)
    RedactSecrets().filter(record)
    assert "s3cret" not in record.getMessage()


def test_webhook_targets() -> None:
    for address in ("127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                    "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1",
                    "224.0.0.1"):
        assert not is_public(ipaddress.ip_address(address)), address
    for address in ("93.184.215.14", "2606:4700::1111"):
        assert is_public(ipaddress.ip_address(address)), address
    assert asyncio.run(refusal("http://[::1]:8080/x")) is not None
    assert asyncio.run(refusal("https://1.1.1.1/x")) is None
    assert asyncio.run(refusal("http://no-such-host.invalid/x")) is None  # checked at delivery


def test_up_turns_identity_on_for_mosquitto_and_off_on_request(tmp_path: Path) -> None:
    from shiptrack.app.up import _broker_identity
    from shiptrack.broker_auth import find_plugin
    from shiptrack.config import Settings
    from shiptrack.embedded import EmbeddedBroker, find_mosquitto

    if find_mosquitto() is None or find_plugin() is None:
        pytest.skip("no mosquitto with its dynamic-security plugin")
    broker = EmbeddedBroker(tmp_path / "broker")
    off = Settings(mqtt_allow_anonymous=True)
    assert _broker_identity(off, broker, tmp_path / "broker", 3) is None
    assert broker.auth_lines is None
    logins = _broker_identity(Settings(), broker, tmp_path / "broker", 3)
    assert logins is not None and broker.auth_lines == logins.lines
    assert "allow_anonymous false" in logins.lines
    assert logins.url("mqtt://127.0.0.1:1883", "ingest") == (
        f"mqtt://ingest:{logins.passwords['ingest']}@127.0.0.1:1883")
    plugin_file = tmp_path / "broker" / "dynamic-security.json"
    kept = tmp_path / "broker" / "service-logins.json"
    assert plugin_file.stat().st_mode & 0o077 == 0 and kept.stat().st_mode & 0o077 == 0
    doc = json.loads(plugin_file.read_text())
    sim = next(r for r in doc["roles"] if r["rolename"] == "shiptrack:simulator")
    topics = [a["topic"] for a in sim["acls"]]
    assert topics[:3] == [f"shiptrack/v1/devices/sim-000{i}/position" for i in (1, 2, 3)]
    assert len(topics) == 3 + 30 and topics[-1].endswith("/demo-0030/position")  # + demo
    doc["clients"].append({"username": "device.d1"})
    plugin_file.write_text(json.dumps(doc))
    again = _broker_identity(Settings(), broker, tmp_path / "broker", 0)
    assert again is not None and again.passwords == logins.passwords, "kept across starts"
    users = [c["username"] for c in json.loads(plugin_file.read_text())["clients"]]
    assert sorted(users) == ["api", "device.d1", "ingest", "simulator"]  # demo fleet


def test_tracking_tokens_are_made_from_the_id_and_kept_as_digests() -> None:
    from shiptrack.tracking_tokens import digest, key_from, known_token, token_for

    key = key_from("secret")
    token = token_for(key, "shp_1")
    assert len(token) == 43 and token == token_for(key, "shp_1")
    assert token != token_for(key, "shp_2") and token != token_for(key_from("other"), "shp_1")
    assert known_token(key, "shp_1", digest(token)) == token
    assert known_token(key, "shp_1", digest("a random old token")) is None
    assert known_token(key, "shp_1", None) is None
