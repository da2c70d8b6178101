"""The milestone engine with the SPEC's full status model: scans of the new kinds,
returns to out_for_delivery, final statuses, and the exception codes of detections."""

from __future__ import annotations

from datetime import timedelta

from ingest.tracking import MilestoneOp, Outcome
from ingest.tracking_model import ExceptionOp
from shiptrack.events import Event
from shiptrack.scans import Scan
from tests.unit.test_tracking import T0, FakeSource, fix, run, shipment, sweep, tracker


def scan(sec: float, kind: str, scanner: str = "dock-1") -> Scan:
    return Scan(scanner_id=scanner, ts=T0 + timedelta(seconds=sec), shipment_ref="R1",
                kind=kind)


def events(out: Outcome) -> list[Event]:
    return [i.event if isinstance(i, MilestoneOp) else i for i in out.items]


def milestones(out: Outcome) -> list[tuple[str, float, str]]:
    return [(i.kind, (i.ts - T0).total_seconds(), i.source) for i in out.items
            if isinstance(i, MilestoneOp)]


def test_scans_of_every_kind() -> None:
    t, src = tracker([], [shipment()]), FakeSource()
    out = run(t, src, [], [scan(10, "pickup"), scan(20, "out_for_delivery"),
                           scan(30, "attempt_failed"), scan(40, "out_for_delivery"),
                           scan(45, "hub"), scan(50, "available_for_pickup"),
                           scan(60, "attempt_failed"), scan(70, "returned"),
                           scan(80, "delivery"), scan(90, "hub")])
    assert milestones(out) == [
        ("picked_up", 10, "scan"), ("out_for_delivery", 20, "scan"),
        ("attempt_failed", 30, "scan"), ("out_for_delivery", 40, "scan"), ("hub", 45, "scan"),
        ("available_for_pickup", 50, "scan"),  # at the pickup point: no failed attempt then
        ("returned_to_sender", 70, "scan")]  # final: no delivery, no hub after it
    assert t.shipments == {}  # final: tracking forgets it
    cleared = [x.kind for x in out.exceptions if not x.open]
    assert cleared == ["device.offline", "device.long_stop", "route.deviation", "eta.at_risk"]


def test_damaged_and_lost_scans_raise_exceptions() -> None:
    t, src = tracker([], [shipment(status="in_transit")]), FakeSource()
    out = run(t, src, [], [scan(10, "damaged"), scan(20, "lost", "hub-2")])
    assert milestones(out) == []
    assert [(e.type, e.data["code"], e.data["reason"], e.data["source"]) for e in events(out)
            ] == [("shipment.exception", "damaged", "damaged (scan by dock-1)", "scan"),
                  ("shipment.exception", "lost", "lost (scan by hub-2)", "scan")]
    assert [(x.kind, x.code, x.open) for x in out.exceptions] == [
        ("scan:damaged", "damaged", True), ("scan:lost", "lost", True)]
    assert isinstance(out.exceptions[0], ExceptionOp)


def test_detections_carry_their_code() -> None:
    t, src = tracker([], [shipment(status="in_transit")]), FakeSource()
    run(t, src, [fix(0, 13.2)], now=T0)
    out = sweep(t, src, [("d1", T0)], T0 + timedelta(minutes=20))
    t.commit(out, set())
    assert [(e.type, e.data["code"]) for e in events(out)] == [
        ("device.offline", "offline"), ("shipment.exception", "offline")]
    assert events(out)[1].data == {"kind": "device.offline", "code": "offline", "source":
                                   "device", "reason": "no position since 2026-11-26T10:00:00Z"}
    assert out.exceptions[0].kind == "device.offline" and out.exceptions[0].code == ""
    back = run(t, src, [fix(1500, 13.21)])
    assert [(e.type, e.data.get("cleared")) for e in events(back)] == [
        ("device.online", None),
        ("shipment.exception_cleared", [{"kind": "device.offline", "code": "offline"}])]


def test_a_device_shipment_without_an_origin() -> None:
    """A carrier shipment with a truck but no origin: no pickup by geofence, the rest
    works (a pickup scan, then in_transit and the destination by fixes)."""
    t, src = tracker([], [shipment(origin=None)]), FakeSource()
    out = run(t, src, [fix(0, 13.0), fix(30, 13.01)], [scan(5, "pickup")])
    assert [m[0] for m in milestones(out)] == ["picked_up", "in_transit"]
