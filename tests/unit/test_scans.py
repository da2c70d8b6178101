"""Scan payloads (SPEC: shiptrack/v1/scanners/{scanner_id}/scan): validation per scan, and
scans routed out of an ingest batch."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ingest.mqtt_source import Inbound
from ingest.pipeline import decode_batch
from shiptrack.scans import Scan, decode_scans, scan_action, unknown_reference

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)
TOPIC = "shiptrack/v1/scanners/dock-3/scan"


def decode(payload: object) -> tuple[list[object], list[str]]:
    out = decode_scans("dock-3", TOPIC, json.dumps(payload).encode(), NOW, 65536)
    return [(s.shipment_ref, s.kind, s.ts, s.lat) for s in out.scans], [
        r.reason for r in out.rejections]


def test_a_scan_and_an_array_of_them() -> None:
    one = {"ts": "2026-11-26T10:00:00Z", "shipment_ref": " PO-1 ", "kind": "pickup",
           "lat": 52.5, "lon": 13.4}
    assert decode(one) == ([("PO-1", "pickup", datetime(2026, 11, 26, 10, tzinfo=UTC),
                             52.5)], [])
    scans, rejected = decode([one, {**one, "kind": "hub", "ts": 1764151200}, {**one,
                                                                             "kind": "x"}])
    assert [s[1] for s in scans] == ["pickup", "hub"]  # type: ignore[index]
    assert rejected == ["bad_scan_kind"]


def test_bad_scans_are_rejected_with_a_reason() -> None:
    base = {"ts": "2026-11-26T10:00:00Z", "shipment_ref": "PO-1", "kind": "hub"}
    cases = [
        ({**base, "shipment_ref": ""}, "missing_field"),
        ({k: v for k, v in base.items() if k != "ts"}, "missing_field"),
        ({**base, "ts": "2026-11-27T10:00:00Z"}, "ts_in_future"),
        ({**base, "lat": 95.0, "lon": 1.0}, "out_of_range"),
        ({**base, "lat": 50.0}, "missing_field"),
        ({**base, "lat": "50", "lon": 1.0}, "bad_type"),
        ("not an object", "not_object"),
    ]
    for payload, reason in cases:
        assert decode(payload) == ([], [reason]), payload
    out = decode_scans("dock-3", TOPIC, b"{nope", NOW, 65536)
    assert [r.reason for r in out.rejections] == ["not_json"]


def test_ingest_routes_scan_topics_to_scans() -> None:
    scan = json.dumps({"ts": "2026-11-26T10:00:00Z", "shipment_ref": "PO-1",
                       "kind": "delivery"}).encode()
    fix = json.dumps({"ts": "2026-11-26T10:00:00Z", "lat": 1.0, "lon": 2.0}).encode()
    batch = [Inbound(0, 1, 1, "p/" + TOPIC, scan, 0.0),
             Inbound(0, 2, 1, "p/shiptrack/v1/devices/d1/position", fix, 0.0),
             Inbound(0, 3, 1, "p/shiptrack/v1/scanners/bad id/scan", scan, 0.0)]
    out = decode_batch(batch, "p/", 65536, NOW)
    assert [(s.scanner_id, s.shipment_ref, s.kind) for s in out.scans] == [
        ("dock-3", "PO-1", "delivery")]
    assert [f.device_id for f in out.fixes] == ["d1"]
    assert [r.reason for r in out.rejections] == ["bad_scanner_id"]
    assert out.scans[0].topic == "p/" + TOPIC and out.scans[0].payload == scan


def scan(kind: str, lat: float | None = None) -> Scan:
    return Scan(scanner_id="dock-3", ts=NOW, shipment_ref="PO-1", kind=kind, lat=lat,
                lon=None if lat is None else 13.4)


def test_what_a_scan_does_is_one_rule_for_both_doors() -> None:
    """scan_action: what ingest's MQTT scans and POST /api/v1/scans both do."""
    assert scan_action(scan("pickup"), "shp_1", "d1", "created").milestones == ("picked_up",)
    hub = scan_action(scan("hub", lat=52.5), "shp_1", "d1", "picked_up")
    assert hub.milestones == ("in_transit", "hub")  # a hub scan also puts it in transit
    assert hub.data == {"scanner_id": "dock-3", "lat": 52.5, "lon": 13.4}
    assert scan_action(scan("hub"), "shp_1", "d1", "in_transit").milestones == ("hub",)
    assert scan_action(scan("returned"), "shp_1", "d1", "in_transit").milestones == (
        "returned_to_sender",)
    damaged = scan_action(scan("damaged"), "shp_1", "d1", "in_transit")
    assert damaged.milestones == () and damaged.exception is not None
    assert (damaged.exception.kind, damaged.exception.code) == ("scan:damaged", "damaged")
    assert damaged.exception.event.data["source"] == "scan"
    late = scan_action(scan("damaged"), "shp_1", "d1", "delivered")
    assert late.late and late.milestones == () and late.exception is None
    assert unknown_reference("X" * 300) == f"no shipment with reference {'X' * 100!r}"
