"""Device identity on the project's own broker setup (deploy/mosquitto: the dynamic-security
plugin): credentials issued and revoked over the API, enforced by Mosquitto.

A device publishes as itself (stored), not as another device, not on live or scan topics
(refused, nothing stored or seen), subscribes to ``#`` and sees nothing of others, cannot
take ingest's client id (ingest keeps storing); a revoked login is cut off at once, open
connection included."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from shiptrack.broker_identity import API_USER, INGEST_USER
from shiptrack.config import Settings
from tests.helpers import query, running_api, running_ingest, wait_for
from tests.integration.identity_broker import IdentityMosquitto

ADMIN = {"Authorization": "Bearer test-admin-token"}
NOW = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


class Client:
    """A paho MQTT 5 client that records what happens to it."""

    def __init__(self, port: int, client_id: str, login: tuple[str, str] | None,
                 will: str | None = None) -> None:
        self.connack: ReasonCode | None = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.disconnect_reason: ReasonCode | None = None
        self.messages: list[tuple[str, bytes]] = []
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.pubacks: dict[int, ReasonCode] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5)
        if login is not None:
            self.client.username_pw_set(*login)
        if will is not None:  # a last will on a topic it may not publish to
            self.client.will_set(will, b"FORGED-WILL", qos=1)
        c = self.client
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = lambda _c, _u, m: self.messages.append((m.topic, bytes(m.payload)))
        c.on_subscribe = lambda _c, _u, mid, codes, _p: self.subacks.__setitem__(mid, codes)
        c.on_publish = lambda _c, _u, mid, rc, _p: self.pubacks.__setitem__(mid, rc)
        c.connect("127.0.0.1", port)
        c.loop_start()
        wait_for(self.connected.is_set, timeout=10)

    def _on_connect(self, c: mqtt.Client, u: Any, f: Any, rc: ReasonCode,
                    p: Properties | None) -> None:
        self.connack = rc
        self.connected.set()

    def _on_disconnect(self, c: mqtt.Client, u: Any, f: Any, rc: ReasonCode,
                       p: Properties | None) -> None:
        self.disconnect_reason = rc
        self.disconnected.set()
        c.disconnect()  # no reconnect attempts from loop_start: we look at one connection

    @property
    def accepted(self) -> bool:
        return self.connack is not None and not self.connack.is_failure

    def publish(self, topic: str, body: object) -> ReasonCode:
        info = self.client.publish(topic, json.dumps(body).encode(), qos=1)
        return wait_for(lambda: self.pubacks.get(info.mid), timeout=10)

    def subscribe(self, topic: str) -> list[ReasonCode]:
        _, mid = self.client.subscribe(topic, options=SubscribeOptions(qos=1))
        assert mid is not None
        return wait_for(lambda: self.subacks.get(mid), timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def identity_broker(tmp_path: Path, topic_prefix: str) -> Iterator[IdentityMosquitto]:
    try:
        broker = IdentityMosquitto(tmp_path / "broker", topic_prefix)
    except FileNotFoundError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs mosquitto with its dynamic-security plugin: {exc}")
        pytest.skip(str(exc))
    broker.start()
    yield broker
    broker.stop()


def fix(k: int) -> dict[str, Any]:
    return {"ts": (NOW + timedelta(seconds=k)).isoformat(), "lat": 52.0 + k * 1e-4, "lon": 13.0}


def stored(settings: Settings, device: str) -> list[int]:
    rows = query(settings.database_url or "",
                 "SELECT ts FROM positions WHERE device_id = %s ORDER BY ts", (device,))
    return [int((r[0] - NOW).total_seconds()) for r in rows]


def test_devices_publish_only_as_themselves_and_are_cut_off_when_revoked(
    settings: Settings, identity_broker: IdentityMosquitto
) -> None:
    broker, prefix = identity_broker, settings.mqtt_topic_prefix
    ingest = settings.model_copy(update={"mqtt_url": broker.url(INGEST_USER)})
    api = settings.model_copy(update={"mqtt_url": broker.url(API_USER), "mqtt_dynsec": True,
                                      "device_mqtt_url": "mqtts://broker.example.com:8883"})
    clients: list[Client] = []

    def connect(client_id: str, login: tuple[str, str] | None,
                will: str | None = None) -> Client:
        clients.append(Client(broker.port, client_id, login, will))
        return clients[-1]

    with running_ingest(ingest), running_api(api) as base, \
            httpx.Client(base_url=base, headers=ADMIN) as http:
        try:
            r = http.post("/api/v1/devices/dev-a/credentials")
            assert r.status_code == 201, r.text
            assert r.headers["cache-control"] == "no-store"
            a = r.json()
            assert (a["device_id"], a["username"], a["client_id"]) == (
                "dev-a", "device.dev-a", "device.dev-a")
            assert a["broker_url"] == "mqtts://broker.example.com:8883"
            assert a["topic"] == f"{prefix}shiptrack/v1/devices/dev-a/position"
            b = http.post("/api/v1/devices/dev-b/credentials").json()
            scanner = http.post("/api/v1/scanners/dock-1/credentials").json()
            assert scanner["topic"] == f"{prefix}shiptrack/v1/scanners/dock-1/scan"

            # live topics as the API reads them: nothing forged may arrive there
            watcher = connect("watcher", (API_USER, broker.passwords[API_USER]))
            assert not watcher.subscribe(f"{prefix}shiptrack/v1/live/#")[0].is_failure

            dev_a = connect(a["client_id"], (a["username"], a["password"]))
            dev_b = connect(b["client_id"], (b["username"], b["password"]),
                            will=f"{prefix}shiptrack/v1/live/events")
            assert dev_a.accepted and dev_b.accepted
            assert dev_a.subscribe("#")[0].is_failure, "a device may not read everything"
            assert dev_a.subscribe(f"{prefix}shiptrack/v1/devices/+/position")[0].is_failure
            assert not dev_a.publish(f"{prefix}shiptrack/v1/devices/dev-a/position",
                                     fix(1)).is_failure
            refused = [
                (f"{prefix}shiptrack/v1/devices/dev-b/position", fix(2)),
                (f"{prefix}shiptrack/v1/live/positions",
                 [{"device_id": "dev-b", **fix(3), "lat": -33.86, "lon": 151.2}]),
                (f"{prefix}shiptrack/v1/live/events", {"type": "shipment.milestone"}),
                (f"{prefix}shiptrack/v1/live/eta", [{"shipment_id": "x", "eta": "2099-01-01"}]),
                (f"{prefix}shiptrack/v1/scanners/dock-1/scan",
                 {"ts": fix(4)["ts"], "shipment_ref": "FORGED", "kind": "delivery"}),
                (f"{prefix}owntracks/dev-a/phone", {"_type": "location", "lat": 1, "lon": 1,
                                                   "tst": 1_700_000_000}),
            ]
            for topic, body in refused:
                assert dev_a.publish(topic, body).value == 0x87, topic  # not authorised
            # positive signals: dev-b's own fix and the real scanner's scan get through
            assert not dev_b.publish(f"{prefix}shiptrack/v1/devices/dev-b/position",
                                     fix(5)).is_failure
            dock = connect(scanner["client_id"], (scanner["username"], scanner["password"]))
            dock.publish(scanner["topic"], {"ts": fix(6)["ts"], "shipment_ref": "REAL",
                                            "kind": "hub"})
            wait_for(lambda: stored(settings, "dev-b") == [5])
            wait_for(lambda: query(settings.database_url or "",
                                   "SELECT detail FROM dead_letters"))
            assert stored(settings, "dev-a") == [1]
            details = [r[0] for r in query(settings.database_url or "",
                                           "SELECT detail FROM dead_letters")]
            assert len(details) == 1 and "REAL" in details[0]  # the forged scan never came
            assert query(settings.database_url or "",
                         "SELECT count(*) FROM positions WHERE device_id LIKE 'owntracks%%'"
                         )[0][0] == 0
            wait_for(lambda: any(b'"dev-b"' in p for t, p in watcher.messages
                                 if t.endswith("live/positions")))
            assert not any(b"151.2" in p or b"2099" in p or b"milestone" in p
                           for _, p in watcher.messages), "forged live data arrived"
            assert dev_a.messages == [], "a device saw others' data"

            # ingest's client id is reserved: a device login cannot take it
            thief = connect(settings.mqtt_client_id, (a["username"], a["password"]))
            assert not thief.accepted
            anonymous = connect("anon-1", None)
            assert not anonymous.accepted
            assert not dev_a.publish(f"{prefix}shiptrack/v1/devices/dev-a/position",
                                     fix(7)).is_failure
            wait_for(lambda: stored(settings, "dev-a") == [1, 7])  # ingest kept its session

            # revocation closes the open connection and refuses the login
            t0 = time.monotonic()
            assert http.delete("/api/v1/devices/dev-b/credentials").status_code == 204
            wait_for(dev_b.disconnected.is_set, timeout=10)
            print(f"revoked connection closed {time.monotonic() - t0:.3f} s after DELETE "
                  f"({dev_b.disconnect_reason})")
            assert connect(b["client_id"], (b["username"], b["password"])).accepted is False
            assert http.delete("/api/v1/devices/dev-b/credentials").status_code == 404

            # issuing again replaces the password
            a2 = http.post("/api/v1/devices/dev-a/credentials").json()
            assert a2["password"] != a["password"]
            wait_for(dev_a.disconnected.is_set, timeout=10)
            assert not connect(a["client_id"], (a["username"], a["password"])).accepted
            dev_a2 = connect(a2["client_id"], (a2["username"], a2["password"]))
            assert dev_a2.accepted
            dev_a2.publish(f"{prefix}shiptrack/v1/devices/dev-a/position", fix(8))
            wait_for(lambda: any(b'"lat":52.0008' in p for _, p in watcher.messages))
            assert not any(b"FORGED-WILL" in p for _, p in watcher.messages), \
                "the revoked device's last will (on a live topic) was delivered"

            listed = http.get("/api/v1/credentials").json()["items"]
            assert sorted((c["kind"], c["subject"]) for c in listed) == [
                ("device", "dev-a"), ("scanner", "dock-1")]
            scanners = http.get("/api/v1/credentials?kind=scanner").json()["items"]
            assert [c["username"] for c in scanners] == ["scanner.dock-1"]
            history = http.get("/api/v1/credentials?kind=device&revoked=true").json()["items"]
            assert sorted((c["subject"], c["revoked_at"] is None) for c in history) == [
                ("dev-a", False), ("dev-a", True), ("dev-b", False)]
            everything = str(query(settings.database_url or "",
                                   "SELECT * FROM broker_credentials"))
            plugin_file = broker.plugin_file.read_text()
            for secret in (a["password"], a2["password"], b["password"]):
                assert secret not in everything and secret not in plugin_file
            assert "device.dev-a" in plugin_file and "device.dev-b" not in plugin_file
        finally:
            for client in clients:
                client.close()


def test_owntracks_user_publishes_its_own_devices_only(
    settings: Settings, identity_broker: IdentityMosquitto
) -> None:
    broker, prefix = identity_broker, settings.mqtt_topic_prefix
    ingest = settings.model_copy(update={"mqtt_url": broker.url(INGEST_USER)})
    api = settings.model_copy(update={"mqtt_url": broker.url(API_USER), "mqtt_dynsec": True})
    with running_ingest(ingest), running_api(api) as base, \
            httpx.Client(base_url=base, headers=ADMIN) as http:
        r = http.post("/api/v1/owntracks/users/alice/credentials")
        assert r.status_code == 201, r.text
        cred = r.json()
        app = cred["owntracks"]
        assert app["_type"] == "configuration" and app["username"] == "owntracks.alice"
        assert app["pubTopicBase"] == f"{prefix}owntracks/alice/%d"
        assert (app["host"], app["port"]) == ("127.0.0.1", broker.port)
        phone = Client(broker.port, cred["client_id"], (cred["username"], cred["password"]))
        try:
            location = {"_type": "location", "lat": 48.1, "lon": 11.5, "tst": int(
                NOW.timestamp())}
            assert phone.publish(f"{prefix}owntracks/bob/phone", location).value == 0x87
            assert not phone.publish(f"{prefix}owntracks/alice/phone", location).is_failure
            wait_for(lambda: stored(settings, "owntracks.alice.phone") == [0])
            assert stored(settings, "owntracks.bob.phone") == []
        finally:
            phone.close()
        assert http.delete("/api/v1/owntracks/users/alice/credentials").status_code == 204
