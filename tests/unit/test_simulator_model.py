"""The simulator's model: roads, driving, driver rules, sensors, trackers, truth, the clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from shiptrack.decode import decode_position
from shiptrack.owntracks import decode_owntracks
from shiptrack.topics import route_topic
from simulator.cities import CITIES
from simulator.clock import SimClock, start_in_past
from simulator.faults import FaultConfig
from simulator.fleet import Fleet, FleetConfig
from simulator.geo import haversine_m
from simulator.roaddata import CORRIDORS, PLACES
from simulator.roads import SPEED_BANDS_KMH, URBAN_M, road_route
from simulator.sensors import SensorConfig
from simulator.tracker import TrackerConfig
from simulator.truth import TruthFiles, eta_trip

T0 = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)
HUBS = {h.name: h for h in CITIES}


def run(fleet: Fleet, interval_s: float, hours: float) -> list[bytes]:
    out: list[bytes] = []
    for k in range(int(hours * 3600 / interval_s)):
        out.extend(m.payload for m in fleet.tick(T0 + timedelta(seconds=k * interval_s)))
    return out


def one_trip(origin: str, destination: str, **config: object) -> Fleet:
    hubs = (HUBS[origin], HUBS[destination])
    cfg = FleetConfig(start_at_hub=True, trips=1, **config)  # type: ignore[arg-type]
    for seed in range(1, 50):  # the first leg's direction is drawn: take one that fits
        fleet = Fleet(1, seed=seed, hubs=hubs, config=cfg)
        if fleet.vehicles[0].leg.origin.name == origin:
            return fleet
    raise AssertionError("no seed starts at the origin")


# --- roads ------------------------------------------------------------------------------


def test_road_data_is_consistent() -> None:
    for ref, cls, names in CORRIDORS:
        assert cls in SPEED_BANDS_KMH, ref
        assert all(n in PLACES for n in names), ref
        for a, b in pairwise(names):  # consecutive places on a road are a drive apart
            assert 10_000 < haversine_m(PLACES[a], PLACES[b]) < 200_000, (ref, a, b)
    assert all(h.name in PLACES and PLACES[h.name] == h.point for h in CITIES)


def test_every_hub_reaches_every_other_by_a_plausible_road() -> None:
    for a in CITIES:
        for b in CITIES:
            if a == b:
                continue
            route = road_route(a.name, b.name)
            straight = haversine_m(a.point, b.point)
            by_land = "Copenhagen" in (a.name, b.name)  # no ferries: over the Great Belt
            assert 1.0 < route.path.length_m / straight < (2.1 if by_land else 1.8), (a, b)
            assert route.path.points[0] == a.point and route.path.points[-1] == b.point


def test_routes_follow_the_motorways_through_real_towns() -> None:
    route = road_route("Berlin", "Hamburg")
    assert route.refs == ("A24",)
    assert {"Neuruppin", "Wittstock", "Ludwigslust"} <= set(route.via)
    for town in route.via:  # the path passes each town within a kilometre or two
        assert route.path.distance_to_m(PLACES[town]) < 2_000
    assert 260_000 < route.path.length_m < 300_000
    assert 3.0 < route.nominal_duration_s() / 3600 < 4.0
    back = road_route("Hamburg", "Berlin")
    assert back.path.points == route.path.points[::-1]
    assert "Gotthard" not in road_route("Zurich", "Milan").via  # places, not passes
    assert "Goschenen" in road_route("Zurich", "Milan").via


def test_route_classes_urban_at_both_ends() -> None:
    route = road_route("Leipzig", "Dresden")
    assert route.class_at(100.0) == "urban"
    assert route.class_at(route.path.length_m - URBAN_M / 2) == "urban"
    assert route.class_at(route.path.length_m / 2) == "motorway"
    paris_zurich = road_route("Paris", "Zurich")
    assert "N19" in paris_zurich.refs and "trunk" in paris_zurich.classes


# --- driving ----------------------------------------------------------------------------


def test_speed_depends_on_the_road_class() -> None:
    fleet = one_trip("Berlin", "Hamburg", tracker=TrackerConfig(interval_s=10.0))
    vehicle = fleet.vehicles[0]
    speeds: dict[str, list[float]] = {"urban": [], "motorway": []}
    for k in range(5 * 360):
        fleet.step(T0 + timedelta(seconds=10 * k))
        if vehicle.moving and vehicle.speed_ms > 1 and vehicle.road_class in speeds:
            speeds[vehicle.road_class].append(vehicle.speed_ms * 3.6)
    assert max(speeds["urban"]) <= SPEED_BANDS_KMH["urban"][1] + 0.5
    assert max(speeds["motorway"]) <= SPEED_BANDS_KMH["motorway"][1] + 0.5
    motorway = sorted(speeds["motorway"])
    assert motorway[len(motorway) // 2] > 70  # median: cruising, not crawling


def test_long_trip_keeps_eu_driver_rules_and_records_its_truth() -> None:
    fleet = one_trip("Hamburg", "Milan", tracker=TrackerConfig(interval_s=60.0))
    run(fleet, 60.0, 30)
    [trip] = fleet.truth.of_type("trip")
    departed = datetime.fromisoformat(trip["departed"])
    arrived = datetime.fromisoformat(trip["arrived"])
    stops = [s for s in trip["stops"] if s["kind"] in ("rest", "daily_rest")]
    kinds = [s["kind"] for s in stops]
    assert "rest" in kinds and "daily_rest" in kinds
    first_rest = datetime.fromisoformat(stops[0]["start"])
    assert 4.0 <= (first_rest - departed).total_seconds() / 3600 <= 5.0
    assert all(s["duration_s"] >= 45 * 60 for s in stops if s["kind"] == "rest")
    assert all(s["duration_s"] >= 11 * 3600 for s in stops if s["kind"] == "daily_rest")
    hours = (arrived - departed).total_seconds() / 3600
    assert 12 + 11 < hours < 30  # ~13 h at the wheel, breaks, an 11 h rest
    assert trip["origin"] == "Hamburg" and trip["destination"] == "Milan"
    assert trip["route"]["type"] == "LineString" and not trip["partial"]
    points = trip["points"]
    assert points[-1]["lat"] == HUBS["Milan"].lat and points[-1]["ts"] == arrived.timestamp()
    assert points[0]["ts"] == departed.timestamp()
    assert all(a["ts"] < b["ts"] for a, b in pairwise(points))


def test_traffic_jams_slow_trucks_down() -> None:
    fleet = Fleet(30, seed=4, hubs=CITIES, config=FleetConfig(
        tracker=TrackerConfig(interval_s=30.0), start_at_hub=True))
    run(fleet, 30.0, 8)
    jams = [s for t in fleet.truth.of_type("trip") for s in t["stops"] if s["kind"] == "jam"]
    assert jams and all(5 <= j["kmh"] <= 30 and 180 <= j["duration_s"] <= 1500 for j in jams)


# --- sensors ----------------------------------------------------------------------------


def test_cold_chain_excursions_start_and_recover() -> None:
    fleet = Fleet(10, seed=2, hubs=CITIES, config=FleetConfig(
        tracker=TrackerConfig(interval_s=60.0), start_at_hub=True,
        sensors=SensorConfig(reefer_share=1.0, failure_rate_per_h=0.5)))
    payloads = [json.loads(p) for p in run(fleet, 60.0, 10)]
    excursions = fleet.truth.of_type("excursion")
    assert len(excursions) >= 5
    for e in excursions:
        low, high = e["band"]
        assert not low <= e["peak_c"] <= high
        assert datetime.fromisoformat(e["end"]) > datetime.fromisoformat(e["ts"])
    assert {e["cause"] for e in excursions} >= {"reefer_failure"}
    temps = [p["sensors"]["temperature_c"] for p in payloads]
    assert min(temps) < -10 < 0 < max(temps)  # frozen and chilled loads
    assert any(p["sensors"]["light_lux"] > 0 for p in payloads)  # doors open at hubs
    assert any(p["sensors"]["shock_g"] >= 2.5 for p in payloads) == bool(
        fleet.truth.of_type("shock"))


def test_battery_drains_and_is_recharged_at_hubs() -> None:
    fleet = Fleet(5, seed=8)
    first = [v.battery for v in fleet.vehicles]
    run(fleet, 60.0, 6)
    assert all(v.battery < b or v.battery == 1.0 for v, b in zip(fleet.vehicles, first,
                                                                 strict=True))


# --- trackers ---------------------------------------------------------------------------


def test_adaptive_reporting_slows_down_while_standing() -> None:
    fleet = one_trip("Leipzig", "Dresden", tracker=TrackerConfig(
        interval_s=10.0, adaptive=True, stationary_interval_s=300.0))
    times: list[tuple[float, bool]] = []
    vehicle = fleet.vehicles[0]
    for k in range(6 * 360):
        if fleet.step(T0 + timedelta(seconds=10 * k)):
            assert vehicle.t is not None
            times.append((vehicle.t, vehicle.moving))
    standing = [b - a for (a, ma), (b, mb) in pairwise(times) if not ma and not mb]
    moving = [b - a for (a, ma), (b, mb) in pairwise(times) if ma and mb]
    assert standing and min(standing) >= 300 - 1e-6
    assert moving and max(moving) == pytest.approx(10.0)


def test_spec_and_owntracks_payloads_pass_ingest_validation() -> None:
    now = T0 + timedelta(hours=1)
    for fmt in ("spec", "owntracks"):
        fleet = Fleet(5, seed=3, config=FleetConfig(tracker=TrackerConfig(format=fmt)))
        for k in range(30):
            for message in fleet.tick(T0 + timedelta(seconds=k)):
                route = route_topic(message.topic)
                assert route.valid
                if fmt == "spec":
                    decoded = decode_position(route.device_id, message.topic, message.payload,
                                              now, 65536)
                else:
                    assert route.device_id.startswith("owntracks.sim.sim-")
                    decoded = decode_owntracks(route.device_id, message.topic,
                                               message.payload, now, 65536)
                    body = json.loads(message.payload)
                    assert body["_type"] == "location" and isinstance(body["tst"], int)
                    assert 0 <= body["batt"] <= 100 and body["vel"] <= 110
                assert not decoded.rejections and len(decoded.fixes) == 1


def test_outliers_jump_far_at_their_rate() -> None:
    fleet = Fleet(50, seed=6, config=FleetConfig(tracker=TrackerConfig(outlier_rate=0.01)))
    fixes = 0
    for k in range(200):
        fixes += len(fleet.tick(T0 + timedelta(seconds=k)))
    outliers = fleet.truth.of_type("outlier")
    assert 0.005 < len(outliers) / fixes < 0.015
    assert all(500 <= o["jump_m"] <= 30_000 for o in outliers)


# --- determinism, truth, clock ----------------------------------------------------------


def test_same_seed_same_bytes_and_truth_faults_or_not() -> None:
    chaos = FleetConfig(faults=FaultConfig.chaos(), tracker=TrackerConfig(outlier_rate=0.01))
    a, b = Fleet(10, seed=5, config=chaos), Fleet(10, seed=5, config=chaos)
    calm = Fleet(10, seed=5)
    for k in range(600):
        now = T0 + timedelta(seconds=5 * k)
        assert a.tick(now) == b.tick(now)
        calm.tick(now)
    assert a.truth.records == b.truth.records
    # faults draw from their own streams: the trucks drive the same roads either way
    assert [v.position for v in a.vehicles] == [v.position for v in calm.vehicles]
    assert Fleet(10, seed=6, config=chaos).tick(T0) != Fleet(10, seed=5, config=chaos).tick(T0)


def test_truth_and_trips_files(tmp_path: Path) -> None:
    fleet = one_trip("Leipzig", "Dresden", tracker=TrackerConfig(interval_s=30.0),
                     faults=FaultConfig(duplicate_rate=0.5))
    run(fleet, 30.0, 4)
    files = TruthFiles(tmp_path / "truth.jsonl", tmp_path / "trips.jsonl")
    files.write(fleet.truth.drain())
    files.close()
    truth = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    assert {"trip", "trip_planned", "duplicate"} <= {r["type"] for r in truth}
    assert all("points" not in r for r in truth)
    [trip] = [json.loads(line) for line in (tmp_path / "trips.jsonl").read_text().splitlines()]
    assert set(trip) == {"trip_id", "points", "route", "device_id"}
    assert trip["points"][-1]["lat"] == HUBS["Dresden"].lat
    assert len(trip["points"]) > 100
    assert eta_trip({"type": "trip", "partial": True}) is None


def test_clock_starts_in_the_past_and_never_runs_ahead_of_the_wall() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    start = start_in_past(now, 60.0, 6 * 3600)
    assert now - start == timedelta(seconds=6 * 3600 * 59 / 60)
    assert start_in_past(now, 1.0, 3600) == now
    clock = SimClock(start, 30.0, 60.0, now)
    for tick in range(0, 2000, 7):
        due_wall = now + timedelta(seconds=clock.wall_offset(tick))
        assert clock.sim_time(tick) <= due_wall  # never stamped later than it is sent
    late = 6 * 3600 // 30 + 100  # past the plan: 1x, on the wall clock
    assert clock.wall_offset(late + 1) - clock.wall_offset(late) == pytest.approx(30.0)
    assert clock.wall_offset(10) == pytest.approx(10 * 30 / 60)
