"""The tracking engine on fakes: geofence events, milestones, scans and exceptions, with the
fixes' own times (no clocks, no sleeps)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingest.fence_index import Fence, FenceIndex, shape_frame
from ingest.tracking import (
    Area,
    DeviceState,
    MilestoneOp,
    Outcome,
    ShipmentTrack,
    Tracker,
    TrackingConfig,
    TrackingView,
)
from shiptrack.events import Event
from shiptrack.fix import Fix
from shiptrack.geofences import corridor_shape, parse_feature
from shiptrack.scans import Scan
from shiptrack.shipments import Limit

T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)
STEP = 0.005  # degrees of longitude per step east: ~343 m at 52 N


class FakeSource:
    """What the database would hold: committed device states and known references (what
    the pipeline's loader reads before a batch)."""

    def __init__(self) -> None:
        self.states: dict[str, DeviceState] = {}
        self.references: set[str] = set()

    def load_states(self, device_ids: list[str]) -> dict[str, DeviceState]:
        return {d: self.states[d] for d in device_ids if d in self.states}

    def known_references(self, refs: list[str]) -> set[str]:
        return self.references & set(refs)


def circle(fid: str, lat: float, lon: float, radius_m: float, **props: Any) -> Fence:
    feature = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
               "properties": {"name": fid, "radius_m": radius_m, **props}}
    return Fence(fid, fid, parse_feature(feature))


def fix(sec: float, lon: float, lat: float = 52.0, device: str = "d1", **kw: Any) -> Fix:
    return Fix(device_id=device, ts=T0 + timedelta(seconds=sec), lat=lat, lon=lon, **kw)


def shipment(**kw: Any) -> ShipmentTrack:
    values: dict[str, Any] = {
        "id": "shp_1", "reference": "R1", "device_id": "d1", "status": "created",
        "origin": Area(key="shp_1:origin", fence_id="gf_a"),
        "destination": Area(key="shp_1:destination", lat=52.0, lon=13.5, radius_m=300),
    }
    values.update(kw)
    return ShipmentTrack(**values)


def tracker(fences: list[Fence] | None = None, ships: list[ShipmentTrack] | None = None,
            **cfg: Any) -> Tracker:
    t = Tracker(TrackingConfig(**cfg))
    t.set_fences(FenceIndex(fences if fences is not None else [circle("gf_a", 52.0, 13.0, 200)]))
    t.set_shipments(ships or [])
    return t


def view(t: Tracker, source: FakeSource, device_ids: Iterable[str],
         scans: Iterable[Scan] = ()) -> TrackingView:
    """The batch's view, loaded before tracking runs (as the pipeline loads it)."""
    wanted = t.wanted(device_ids, scans)
    return t.view(wanted, source.load_states(wanted.missing),
                  source.known_references(wanted.unknown))


def sweep(t: Tracker, source: FakeSource, silent: list[tuple[str, datetime]],
          now: datetime) -> Outcome:
    return t.sweep(view(t, source, [d for d, _ in silent]), silent, now)


def run(t: Tracker, source: FakeSource, fixes: list[Fix], scans: list[Scan] | None = None,
        now: datetime | None = None) -> Outcome:
    """One batch, committed: what the pipeline does around the database write."""
    now = now or (max(f.ts for f in fixes) if fixes else T0)
    fixes = sorted(fixes, key=lambda f: f.ts)
    out = t.process(view(t, source, [f.device_id for f in fixes], scans or []), fixes,
                    scans or [], now)
    applied = {(m.shipment_id, m.kind, m.ts) for m in out.items if isinstance(m, MilestoneOp)}
    t.commit(out, applied)
    source.states.update(out.states)
    return out


def events(out: Outcome) -> list[Event]:
    """The events, but the shipment.exception* that accompany each detector's own
    (tests/unit/test_tracking_statuses.py checks those)."""
    return [i.event if isinstance(i, MilestoneOp) else i for i in out.items
            if isinstance(i, MilestoneOp) or not i.type.startswith("shipment.exception")]


def summary(out: Outcome) -> list[tuple[str, float, str]]:
    """(type, seconds after T0, fence / milestone kind / sensor)."""
    rows = []
    for e in events(out):
        what = e.data.get("kind") or e.data.get("sensor") or e.geofence_id or ""
        rows.append((e.type, (e.ts - T0).total_seconds(), str(what)))
    return rows


def trip() -> list[Fix]:
    """10 min at the origin fence, 100 steps east at 30 s, 10 min at the destination."""
    fixes = [fix(30 * i, 13.0) for i in range(20)]
    fixes += [fix(600 + 30 * (i - 1), 13.0 + STEP * i) for i in range(1, 101)]
    fixes += [fix(3600 + 30 * i, 13.5) for i in range(20)]
    return fixes


def test_enter_dwell_exit_dated_by_the_first_fix_on_the_new_side() -> None:
    t, src = tracker(), FakeSource()
    out = run(t, src, [fix(30 * i, 13.0) for i in range(12)] + [fix(360, 13.01),
                                                                 fix(390, 13.02)])
    assert summary(out) == [("geofence.enter", 0, "gf_a"), ("geofence.dwell", 300, "gf_a"),
                            ("geofence.exit", 360, "gf_a")]
    assert events(out)[1].data["dwell_s"] == 300


@pytest.mark.parametrize("age", [timedelta(0), timedelta(days=1)], ids=["live", "replayed"])
def test_boundary_jitter_makes_one_enter(age: timedelta) -> None:
    """Flicking in and out across the edge every few seconds, then staying in."""
    t, src = tracker(), FakeSource()
    inside, outside = 13.0 + 0.0025, 13.0 + 0.0033  # ~171 m and ~226 m from the centre
    jitter = [fix(4 * i, inside if i % 2 else outside) for i in range(30)]
    steady = [fix(120 + 4 * i, inside) for i in range(10)]
    out = run(t, src, jitter + steady, now=T0 + timedelta(seconds=160) + age)
    assert summary(out) == [("geofence.enter", 116, "gf_a")]  # the last flick in, held
    # more jitter later (short excursions outside) makes no exit either
    out = run(t, src, [fix(200 + 4 * i, outside if i % 3 == 0 else inside) for i in range(20)],
              now=T0 + timedelta(seconds=300) + age)
    assert summary(out) == []


def test_fixes_within_their_accuracy_of_the_edge_say_nothing() -> None:
    t, src = tracker(debounce=timedelta(0)), FakeSource()
    near = 13.0 + 0.0026  # ~178 m from the centre of a 200 m circle
    out = run(t, src, [fix(0, near, accuracy=25.0), fix(10, 13.01), fix(20, near,
                                                                          accuracy=25.0)])
    assert summary(out) == []
    out = run(t, src, [fix(30, near, accuracy=3.0)])
    assert summary(out) == [("geofence.enter", 30, "gf_a")]


@pytest.mark.parametrize("age", [timedelta(0), timedelta(days=1)], ids=["live", "replayed"])
def test_batch_and_one_by_one_give_the_same_events_with_the_same_ids(age: timedelta) -> None:
    fences = [circle("gf_a", 52.0, 13.0, 200), circle("gf_b", 52.0, 13.5, 300)]
    whole = run(tracker(fences, [shipment()]), FakeSource(), trip(),
                now=trip()[-1].ts + age)
    t, src = tracker(fences, [shipment()]), FakeSource()
    pieces: list[Event] = []
    for f in trip():
        pieces += events(run(t, src, [f], now=f.ts + age))
    assert [e.id for e in pieces] == [e.id for e in events(whole)]
    assert len(pieces) == 9


def test_restart_mid_trip_repeats_nothing_and_loses_nothing() -> None:
    fences = [circle("gf_a", 52.0, 13.0, 200), circle("gf_b", 52.0, 13.5, 300)]
    expected = [e.id for e in events(run(tracker(fences, [shipment()]), FakeSource(),
                                         trip()))]
    src = FakeSource()
    fixes = trip()
    first = events(run(tracker(fences, [shipment()]), src, fixes[:25]))  # just picked up
    # a new process: states come from the "database", the shipment's status too
    last = first[-1]
    assert last.data["kind"] == "in_transit"
    restarted = tracker(fences, [shipment(status="in_transit", last_ts=last.ts)])
    rest = events(run(restarted, src, fixes[25:]))
    assert [e.id for e in first + rest] == expected


def test_milestones_through_origin_corridor_and_destination() -> None:
    route = [[13.0, 52.0], [13.5, 52.0]]
    ship = shipment(corridor=shape_frame(corridor_shape(route, 500).geometry))
    fences = [circle("gf_a", 52.0, 13.0, 200)]
    out = run(tracker(fences, [ship]), FakeSource(), trip())
    milestones = [(s[2], s[1]) for s in summary(out) if s[0] == "shipment.milestone"]
    assert milestones == [("picked_up", 600), ("in_transit", 690),
                          ("out_for_delivery", 2670), ("delivered", 3570)]
    assert not [s for s in summary(out) if s[0].startswith("route.")]


def test_milestones_never_go_backwards_and_scans_count() -> None:
    t, src = tracker([circle("gf_a", 52.0, 13.0, 200)], [shipment()]), FakeSource()
    src.references = {"R1", "OLD"}

    def scan(sec: float, kind: str, ref: str = "R1") -> Scan:
        return Scan(scanner_id="hub-7", ts=T0 + timedelta(seconds=sec), shipment_ref=ref,
                    kind=kind, lat=52.1, lon=13.2)

    out = run(t, src, [], [scan(10, "pickup"), scan(20, "hub"), scan(15, "pickup")])
    assert [(s[2], s[1]) for s in summary(out)] == [("picked_up", 10), ("in_transit", 20),
                                                    ("hub", 20)]
    assert events(out)[2].data["scanner_id"] == "hub-7"
    out = run(t, src, [], [scan(30, "hub"), scan(30, "hub"), scan(5, "pickup"),
                           scan(15, "hub")])
    # a duplicate hub scan and a late pickup: nothing; an earlier hub scan: at its own time
    assert [(s[2], s[1]) for s in summary(out)] == [("hub", 15), ("hub", 30)]
    out = run(t, src, [], [scan(40, "delivery"), scan(50, "hub"), scan(60, "nope", "NOPE"),
                           scan(70, "hub", "OLD")])
    assert [(s[2], s[1]) for s in summary(out)] == [("delivered", 40)]
    assert [r.reason for r in out.rejections] == ["unknown_shipment"]
    assert "NOPE" in out.rejections[0].detail
    assert "shp_1" not in t.shipments  # delivered: no longer tracked


def test_delivery_zone_fence_makes_out_for_delivery() -> None:
    zone = circle("gf_zone", 52.0, 13.45, 20_000, delivery_zone=True)
    ship = shipment()
    t = tracker([circle("gf_a", 52.0, 13.0, 200), zone], [ship],
                out_for_delivery_m=1000.0)
    assert ship.delivery_zones == {"gf_zone"}
    out = run(t, FakeSource(), trip()[:60])
    assert [s[2] for s in summary(out) if s[0] == "shipment.milestone"] == [
        "picked_up", "in_transit", "out_for_delivery"]
    enter = next(e for e in events(out) if e.geofence_id == "gf_zone")
    ofd = next(e for e in events(out) if e.data.get("kind") == "out_for_delivery")
    assert (ofd.ts, ofd.geofence_id) == (enter.ts, "gf_zone")


def under_way(cfg: dict[str, Any] | None = None, **kw: Any) -> tuple[Tracker, FakeSource]:
    t = tracker([], [shipment(status="in_transit", **kw)], **(cfg or {}))
    return t, FakeSource()


def test_temperature_excursion_after_its_duration_and_resolve() -> None:
    limits = {"temperature_c": Limit("temperature_c", 2.0, 8.0, 300.0),
              "shock_g": Limit("shock_g", None, 4.0, 0.0)}
    t, src = under_way(limits=limits)
    temps = [5, 9, 9.5, 7, 9, 10, 11, 10.5, 9, 6, 6]
    fixes = [fix(120 * i, 13.2 + 0.01 * i, sensors={"temperature_c": v})
             for i, v in enumerate(temps)]
    out = run(t, src, fixes)
    assert summary(out) == [("sensor.excursion", 840, "temperature_c"),
                            ("sensor.excursion_resolved", 1080, "temperature_c")]
    start, end = events(out)
    assert start.data["since"] == "2026-11-26T10:08:00Z" and start.data["max"] == 8.0
    assert end.data["peak"] == 11 and end.data["duration_s"] == 600
    assert [(x.kind, x.open) for x in out.exceptions] == [
        ("sensor.excursion:temperature_c", True), ("sensor.excursion:temperature_c", False)]
    out = run(t, src, [fix(2000, 13.3, sensors={"shock_g": 6.5}),
                       fix(2010, 13.31, sensors={"shock_g": 0.2})])
    assert summary(out) == [("sensor.excursion", 2000, "shock_g"),
                            ("sensor.excursion_resolved", 2010, "shock_g")]


def test_route_deviation_after_grace_and_back_on_route() -> None:
    corridor = shape_frame(corridor_shape([[13.0, 52.0], [14.0, 52.0]], 1000).geometry)
    t, src = under_way({"deviation_grace": timedelta(minutes=3)}, corridor=corridor)
    lats = [52.0, 52.005, 52.02, 52.03, 52.03, 52.03, 52.03, 52.001, 52.0]
    out = run(t, src, [fix(60 * i, 13.2 + 0.01 * i, lat=v) for i, v in enumerate(lats)],
              now=T0)
    assert summary(out) == [("route.deviation", 300, ""), ("route.deviation_resolved", 420,
                                                          "")]
    start = events(out)[0]
    assert start.data["since"] == "2026-11-26T10:02:00Z"
    assert 2200 < start.data["distance_m"] < 2400  # 0.03 deg north, 1 km corridor
    assert out.exceptions[0].reason.startswith("off the planned route by")


def test_long_stop_outside_known_places() -> None:
    t, src = under_way()
    fixes = [fix(0, 13.2), fix(60, 13.3)] + [fix(60 + 300 * i, 13.3005) for i in range(1, 8)]
    fixes += [fix(2400, 13.32)]
    out = run(t, src, fixes)
    assert summary(out) == [("device.long_stop", 1860, ""),
                            ("device.long_stop_resolved", 2400, "")]
    assert events(out)[0].shipment_id == "shp_1"
    assert out.exceptions[0].reason.startswith("stopped for 30 min")
    # inside a known place a stop is no exception
    t2 = tracker([circle("gf_rest", 52.0, 13.3, 500)], [shipment(status="in_transit")])
    out = run(t2, FakeSource(), fixes[1:-1])
    assert [s[0] for s in summary(out)] == ["geofence.enter", "geofence.dwell"]


def test_offline_sweep_then_online() -> None:
    t, src = under_way()
    run(t, src, [fix(0, 13.2)], now=T0)
    assert t.states["d1"].live
    out = sweep(t, src, [("d1", T0)], T0 + timedelta(minutes=20))
    t.commit(out, set())
    assert summary(out) == [("device.offline", 900, "")]
    assert out.states["d1"].offline and out.exceptions[0].open
    assert sweep(t, src, [("d1", T0)], T0 + timedelta(minutes=21)).items == []  # once
    out = run(t, src, [fix(1500, 13.21)])
    assert summary(out) == [("device.online", 1500, "")]
    assert events(out)[0].data["offline_since"] == "2026-11-26T10:00:00Z"
    assert out.exceptions[0].kind == "device.offline" and not out.exceptions[0].open


def test_old_data_does_not_make_a_device_live() -> None:
    t, src = tracker([]), FakeSource()
    run(t, src, [fix(0, 13.2)], now=T0 + timedelta(days=2))
    assert not t.states["d1"].live


def test_deleted_fence_drops_its_state_without_events() -> None:
    t, src = tracker(), FakeSource()
    run(t, src, [fix(0, 13.0), fix(30, 13.0)])
    assert "gf_a" in t.states["d1"].areas
    t.set_fences(FenceIndex([]))
    out = run(t, src, [fix(60, 13.0)])
    assert summary(out) == [] and "d1" in out.states and not out.states["d1"].areas


@pytest.mark.parametrize("kind", ["polygon", "corridor"])
def test_other_shapes_make_events_too(kind: str) -> None:
    if kind == "polygon":
        ring = [[12.99, 51.99], [13.01, 51.99], [13.01, 52.01], [12.99, 52.01], [12.99, 51.99]]
        geometry: dict[str, Any] = {"type": "Polygon", "coordinates": [ring]}
        props: dict[str, Any] = {}
    else:
        geometry = {"type": "LineString", "coordinates": [[13.0, 51.9], [13.0, 52.1]]}
        props = {"buffer_m": 300}
    fence = Fence("gf_x", "x", parse_feature({"type": "Feature", "geometry": geometry,
                                              "properties": {"name": "x", **props}}))
    out = run(tracker([fence]), FakeSource(), [fix(0, 12.9), fix(30, 13.0), fix(60, 13.0),
                                               fix(90, 13.1), fix(120, 13.1)])
    assert summary(out) == [("geofence.enter", 30, "gf_x"), ("geofence.exit", 90, "gf_x")]
