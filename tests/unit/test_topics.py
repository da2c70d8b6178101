from __future__ import annotations

import pytest

from shiptrack.errors import ConfigError
from shiptrack.mqtturl import parse_mqtt_url
from shiptrack.topics import route_topic


@pytest.mark.parametrize(
    ("topic", "kind", "device", "valid"),
    [
        ("shiptrack/v1/devices/truck-1/position", "position", "truck-1", True),
        ("shiptrack/v1/devices/a.b:c_d-e/position", "position", "a.b:c_d-e", True),
        ("shiptrack/v1/devices/bad id/position", "position", "bad id", False),
        ("shiptrack/v1/devices/" + "x" * 65 + "/position", "position", "x" * 65, False),
        ("owntracks/jane/phone", "owntracks", "owntracks.jane.phone", True),
        ("owntracks/jane/phone/event", "unknown", "", False),
        ("shiptrack/v1/scanners/hub-1/scan", "scan", "hub-1", True),
        ("something/else", "unknown", "", False),
    ],
)
def test_route_topic(topic: str, kind: str, device: str, valid: bool) -> None:
    route = route_topic(topic)
    assert (route.kind, route.device_id, route.valid) == (kind, device, valid)


def test_prefix_is_stripped_and_required() -> None:
    assert route_topic("p/shiptrack/v1/devices/d/position", "p/").device_id == "d"
    assert route_topic("shiptrack/v1/devices/d/position", "p/").valid is False


def test_mqtt_urls() -> None:
    t = parse_mqtt_url("mqtt://user:p%40ss@broker.example:1884")
    assert (t.host, t.port, t.username, t.password, t.tls) == (
        "broker.example", 1884, "user", "p@ss", False)
    assert parse_mqtt_url("mqtts://h").port == 8883
    assert parse_mqtt_url("mqtt://h").port == 1883
    with pytest.raises(ConfigError):
        parse_mqtt_url("http://h")
    with pytest.raises(ConfigError):
        parse_mqtt_url("mqtt://")
