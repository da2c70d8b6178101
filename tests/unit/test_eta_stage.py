"""The ETA stage of ingest on fakes: fields, events once, nothing applied before commit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.eta_stage import EtaOutcome, EtaStage
from ingest.tracking_model import Area, ShipmentTrack
from shiptrack.eta.model import EtaEstimator
from shiptrack.fix import Fix

T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)
ROUTE = {"type": "LineString", "coordinates": [[13.0, 52.0], [13.5, 52.0]]}  # ~34 km east
FAR = T0 + timedelta(days=2)


def anchor(area: Area) -> tuple[float, float] | None:
    return None if area.fence_id == "gf_gone" else (area.lat, area.lon)


def stage(**kw: Any) -> EtaStage:
    return EtaStage(EtaEstimator(), anchor, **kw)


def ship(**kw: Any) -> ShipmentTrack:
    values: dict[str, Any] = {
        "id": "shp_1", "reference": "R1", "device_id": "d1", "status": "in_transit",
        "origin": Area(key="o", lat=52.0, lon=13.0, radius_m=250),
        "destination": Area(key="d", lat=52.0, lon=13.5, radius_m=250),
        "route": ROUTE, "promised_by": FAR}
    values.update(kw)
    return ShipmentTrack(**values)


def fixes(start: int, n: int, device: str = "d1") -> list[Fix]:
    """A fix a minute, ~690 m east each (~41 km/h)."""
    return [Fix(device_id=device, ts=T0 + timedelta(minutes=i), lat=52.0, lon=13.0 + 0.01 * i)
            for i in range(start, start + n)]


def run(s: EtaStage, batch: list[Fix], ships: list[ShipmentTrack]) -> EtaOutcome:
    by_device: dict[str, list[ShipmentTrack]] = {}
    for sh in ships:
        by_device.setdefault(sh.device_id, []).append(sh)
    out = s.process(batch, by_device)
    s.commit(out)
    return out


def types(out: EtaOutcome) -> list[str]:
    return [e.type for e in out.events]


def test_fields_fill_and_remaining_falls_as_the_device_advances() -> None:
    s, sh = stage(), ship()
    first = run(s, fixes(0, 3), [sh])
    second = run(s, fixes(3, 3), [sh])
    [a], [b] = first.rows, second.rows
    assert a.shipment_id == "shp_1" and a.eta_low <= a.eta <= a.eta_high
    assert a.eta.microsecond == 0 and not a.at_risk
    assert 32_000 < a.remaining_m < 34_000  # 2 steps of ~690 m along a ~34.3 km route
    assert b.remaining_m < a.remaining_m - 1_500
    [msg] = second.messages
    assert msg["shipment_id"] == "shp_1" and msg["device_id"] == "d1"
    assert msg["remaining_m"] == b.remaining_m and msg["at_risk"] is False
    assert msg["ts"] == "2026-11-26T10:05:00Z" and msg["promised_by"] == "2026-11-28T10:00:00Z"
    assert msg["eta"] == b.eta.isoformat().replace("+00:00", "Z")


def test_nothing_is_applied_before_commit_and_a_replay_gives_the_same_ids() -> None:
    s, sh = stage(), ship()
    one = s.process(fixes(0, 4), {"d1": [sh]})
    assert s.motions == {} and s.progress == {} and s.announced == {}
    two = s.process(fixes(0, 4), {"d1": [sh]})
    assert [e.id for e in one.events] == [e.id for e in two.events]
    assert one.rows == two.rows and types(one) == ["shipment.eta_changed"]
    s.commit(one)
    assert s.announced["shp_1"] == one.rows[0].eta and "d1" in s.motions


def test_eta_changed_is_announced_once_not_on_every_batch() -> None:
    s, sh = stage(), ship()
    outs = [run(s, fixes(i, 1), [sh]) for i in range(20)]
    changed = [o for o in outs if "shipment.eta_changed" in types(o)]
    assert outs[0] in changed and len(changed) < 5
    event = outs[0].events[0]
    assert event.data["previous_eta"] is None and event.data["eta"] == outs[0].messages[0]["eta"]
    assert event.shipment_id == "shp_1" and event.device_id == "d1"
    # every row carries the ETA last announced, whatever was computed since
    assert {o.rows[0].announced for o in outs[:len(outs)]} <= {
        o.rows[0].eta for o in changed}


def test_a_big_move_is_announced_against_the_last_announced_eta() -> None:
    s, sh = stage(change=timedelta(minutes=10)), ship()
    run(s, fixes(0, 3), [sh])
    announced = s.announced["shp_1"]
    # the device jumps back to the start an hour later: the ETA moves by over an hour
    late = [Fix(device_id="d1", ts=T0 + timedelta(minutes=60 + i), lat=52.0, lon=13.0 + 0.001 * i)
            for i in range(2)]
    out = run(s, late, [sh])
    assert types(out) == ["shipment.eta_changed"]
    assert announced is not None
    assert out.events[0].data["previous_eta"] == announced.isoformat().replace("+00:00", "Z")


def test_at_risk_once_when_it_becomes_true_and_cleared_once() -> None:
    s = stage(basis="eta")
    late = ship(promised_by=T0)  # already unreachable
    first = run(s, fixes(0, 2), [late])
    assert types(first) == ["shipment.eta_changed", "shipment.at_risk"]
    risk = first.events[1]
    assert risk.data["promised_by"] == "2026-11-26T10:00:00Z" and risk.data["basis"] == "eta"
    assert first.rows[0].at_risk and first.messages[0]["at_risk"] is True
    again = [run(s, fixes(i, 1), [late]) for i in range(2, 6)]
    assert all("shipment.at_risk" not in types(o) for o in again)
    assert all(o.rows[0].at_risk for o in again)
    relaxed = ship(promised_by=FAR)  # the API moved promised_by; shipments reloaded
    cleared = run(s, fixes(6, 1), [relaxed])
    assert "shipment.at_risk_cleared" in types(cleared) and not cleared.rows[0].at_risk
    assert "shipment.at_risk_cleared" not in types(run(s, fixes(7, 1), [relaxed]))


def test_no_promise_is_never_at_risk() -> None:
    out = run(stage(), fixes(0, 2), [ship(promised_by=None)])
    assert not out.rows[0].at_risk and types(out) == ["shipment.eta_changed"]
    assert out.messages[0]["promised_by"] is None


def test_a_restart_starts_from_what_was_loaded() -> None:
    s, sh = stage(), ship()
    before = run(s, fixes(0, 3), [sh]).rows[0]
    loaded = ship(eta_announced=before.announced, at_risk=False)
    fresh = stage()  # a new process: the shipment as stored
    out = run(fresh, fixes(3, 1), [loaded])
    assert types(out) == []  # neither re-announced nor at risk
    assert out.rows[0].announced == before.announced
    risky = ship(id="shp_2", promised_by=T0, at_risk=True, eta_announced=before.announced)
    assert types(run(stage(), fixes(3, 1), [risky])) == []


def test_skipped_delivered_and_unanchored_shipments_get_no_eta() -> None:
    s = stage()
    gone = ship(id="shp_2", destination=Area(key="d", fence_id="gf_gone"))
    done = ship(id="shp_3", status="delivered")
    s.commit(s.process(fixes(0, 2), {"d1": [ship()]}))
    out = s.process(fixes(2, 2), {"d1": [ship(), gone, done]}, skip={"shp_1"})
    assert out.rows == [] and out.events == [] and out.messages == []
    assert "d1" in out.motions  # the device's motion still follows its fixes
    s.commit(out)
    assert "shp_1" not in s.progress and "shp_1" not in s.announced  # forgotten


def test_one_estimate_per_shipment_per_batch_and_devices_apart() -> None:
    s = stage()
    other = ship(id="shp_2", device_id="d2")
    batch = sorted(fixes(0, 5) + fixes(0, 5, device="d2"), key=lambda f: f.ts)
    out = run(s, batch, [ship(), other, ship(id="shp_3")])
    assert [r.shipment_id for r in out.rows] == ["shp_1", "shp_2", "shp_3"]
    assert len(out.messages) == 3 and set(out.motions) == {"d1", "d2"}


def test_a_route_change_or_an_unusable_route_makes_a_new_plan() -> None:
    s = stage()
    run(s, fixes(0, 3), [ship()])
    plan = s.plans["shp_1"].plan
    run(s, fixes(3, 1), [ship()])  # reloaded, same route: same plan
    assert s.plans["shp_1"].plan is plan
    bad = run(s, fixes(4, 1), [ship(route={"type": "Point", "coordinates": [13, 52]})])
    assert s.plans["shp_1"].plan is not plan and s.plans["shp_1"].plan.route is None
    assert bad.rows[0].remaining_m > 0  # straight line times the detour factor


def test_late_probability_at_risk_from_it_and_eta_first() -> None:
    s = stage(basis="late_probability", threshold=0.5)
    on_time, late = ship(), ship(id="shp_2", promised_by=T0)  # the promise has passed
    tight = ship(id="shp_3", promised_by=None)
    first = run(s, fixes(0, 3), [on_time, late, tight])
    rows = {r.shipment_id: r for r in first.rows}
    assert rows["shp_1"].late_probability is not None and rows["shp_1"].late_probability < 0.05
    assert rows["shp_2"].late_probability == 1.0 and rows["shp_2"].at_risk
    assert rows["shp_3"].late_probability is None and not rows["shp_3"].at_risk
    assert "shipment.at_risk" in types(first)
    [risk] = [e for e in first.events if e.type == "shipment.at_risk"]
    assert risk.data["late_probability"] == 1.0 and risk.data["basis"] == "late_probability"
    # standing still for an hour: the ETA slips, eta_first stays the first one
    standing = [Fix(device_id="d1", ts=T0 + timedelta(minutes=3 + 10 * i), lat=52.0,
                    lon=13.02) for i in range(1, 7)]
    later = {r.shipment_id: r for r in run(s, standing, [on_time]).rows}
    assert later["shp_1"].eta > rows["shp_1"].eta + timedelta(minutes=20)
    assert later["shp_1"].eta_first == rows["shp_1"].eta_first == rows["shp_1"].eta
    [msg] = [m for m in s.process(standing[-1:], {"d1": [on_time]}).messages]
    assert msg["eta_first"] == rows["shp_1"].eta.isoformat().replace("+00:00", "Z")
    assert 0.0 <= msg["late_probability"] < 0.05
