"""The outlier filter over recorded-style sequences: what real trackers send."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from ingest.outliers import DeviceTrack, LastFix, Rules, advance, seed
from shiptrack.eta.geo import haversine_m
from shiptrack.fix import Fix

T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)
RULES = Rules(max_speed_mps=300 / 3.6, confirm=3)
BERLIN = (52.52, 13.405)


def fix(sec: float, lat: float, lon: float, device: str = "d",
        accuracy: float | None = None) -> Fix:
    return Fix(device_id=device, ts=T0 + timedelta(seconds=sec), lat=lat, lon=lon,
               accuracy=accuracy)


def drive(start: tuple[float, float], kmh: float, seconds: int, every: float = 1.0,
          t0: float = 0.0, bearing_deg: float = 90.0, noise_m: float = 0.0,
          seed_: int = 1) -> list[Fix]:
    """Fixes of a device driving straight at ``kmh``, one every ``every`` s, with GPS noise."""
    rng = random.Random(seed_)
    out = []
    lat0, lon0 = start
    for k in range(int(seconds / every) + 1):
        t = k * every
        d = kmh / 3.6 * t + rng.gauss(0, noise_m)
        side = rng.gauss(0, noise_m)
        b = math.radians(bearing_deg)
        dn, de = d * math.cos(b) - side * math.sin(b), d * math.sin(b) + side * math.cos(b)
        lat = lat0 + dn / 111_195
        lon = lon0 + de / (111_195 * math.cos(math.radians(lat0)))
        out.append(fix(t0 + t, lat, lon, accuracy=max(3.0, noise_m)))
    return out


def flags(fixes: list[Fix]) -> list[bool]:
    return [f.outlier for f in sorted(fixes, key=lambda f: f.ts)]


def test_haversine_one_degree_of_latitude() -> None:
    assert abs(haversine_m(0, 0, 1, 0) - 111_195) < 10


def test_live_moves_forward_only_and_in_ts_order() -> None:
    last = seed({"d": LastFix(T0 + timedelta(seconds=10), 52.0, 13.0)})
    batch = [fix(12, 52.0002, 13.0), fix(5, 51.9999, 13.0), fix(11, 52.0001, 13.0)]
    live, moved = advance(batch, last, RULES)
    assert [f.ts.second for f in live] == [11, 12]
    assert moved["d"].accepted == LastFix(T0 + timedelta(seconds=12), 52.0002, 13.0)
    assert not any(f.outlier for f in batch)


def test_glitch_first_in_a_new_devices_first_batch() -> None:
    """The issue's case: an old buffered fix 110 km away, then five consistent ones."""
    good = drive(BERLIN, 60, 40, every=10, t0=100)[:5]
    glitch = fix(0, BERLIN[0] + 1.0, BERLIN[1])  # 111 km north, oldest
    live, moved = advance([*good, glitch], {}, RULES)
    assert glitch.outlier and not any(f.outlier for f in good)
    assert live == good
    assert moved["d"].accepted == LastFix(good[-1].ts, good[-1].lat, good[-1].lon,
                                          good[-1].accuracy)


def test_glitch_first_against_a_known_position() -> None:
    last = seed({"d": LastFix(T0 - timedelta(seconds=10), *BERLIN)})
    good = drive(BERLIN, 50, 50, every=10, t0=10)
    glitch = fix(5, BERLIN[0] + 1.0, BERLIN[1])
    live, _ = advance([glitch, *good], last, RULES)
    assert glitch.outlier and live == good


def test_glitch_in_the_middle_is_flagged_alone() -> None:
    seq = drive(BERLIN, 80, 120, every=5, noise_m=5)
    seq[10] = fix(50.5, BERLIN[0] - 0.5, BERLIN[1] + 0.7)  # 70 km off for one fix
    seq[17] = fix(seq[17].ts.timestamp() - T0.timestamp(), 0.0, 0.0)  # null island
    live, moved = advance(list(seq), {}, RULES)
    assert [i for i, f in enumerate(seq) if f.outlier] == [10, 17]
    assert len(live) == len(seq) - 2
    assert moved["d"].candidates == ()  # the lone glitches are forgotten


def test_two_glitches_in_a_row_are_still_outliers() -> None:
    seq = drive(BERLIN, 80, 100, every=5)
    for k in (8, 9):  # a short multipath burst: two agreeing bad fixes
        t = seq[k].ts.timestamp() - T0.timestamp()
        seq[k] = fix(t, BERLIN[0] + 0.3, BERLIN[1] + 0.001 * k)
    advance(list(seq), {}, RULES)
    assert [i for i, f in enumerate(seq) if f.outlier] == [8, 9]


def test_jump_after_a_restart_is_accepted_after_three_fixes() -> None:
    """`up --simulate` restarted: the fleet resumes 30 km back a few seconds later."""
    before = drive(BERLIN, 90, 60)
    tracks: dict[str, DeviceTrack] = {}
    live, moved = advance(before, tracks, RULES)
    tracks.update(moved)
    back = (BERLIN[0], BERLIN[1] - 30_000 / (111_195 * math.cos(math.radians(BERLIN[0]))))
    after = drive(back, 90, 30, t0=65)
    accepted: list[Fix] = []
    for f in after:  # one fix per batch, as a slow broker would deliver them
        live, moved = advance([f], tracks, RULES)
        tracks.update(moved)
        accepted.extend(live)
    assert flags(after)[:2] == [True, True]  # stored flagged before they were confirmed
    assert not any(flags(after)[2:])
    assert accepted == after[2:]
    assert tracks["d"].accepted is not None
    assert tracks["d"].accepted.ts == after[-1].ts


def test_jump_in_one_batch_takes_the_whole_run() -> None:
    tracks = seed({"d": LastFix(T0, *BERLIN)})
    far = drive((BERLIN[0] + 0.3, BERLIN[1]), 60, 20, every=2, t0=5)
    live, _ = advance(list(far), tracks, RULES)
    assert live == far and not any(flags(far))


def test_a_ferry_crossing_and_a_tow() -> None:
    # Puttgarden -> Rødby: the tracker is silent in the hull for 50 min, 19 km further
    puttgarden, rodby = (54.503, 11.228), (54.655, 11.352)
    tracks = seed({"d": LastFix(T0, *puttgarden)})
    landed = drive(rodby, 40, 60, every=10, t0=3000, bearing_deg=0)
    live, moved = advance(list(landed), tracks, RULES)
    assert live == landed  # plausible after the gap: accepted at once
    # a tow truck takes it 80 km in 10 minutes with the tracker off (480 km/h implied)
    tracks.update(moved)
    towed = drive((rodby[0] + 0.72, rodby[1]), 30, 40, every=10, t0=3660 + 600)
    live, _ = advance(list(towed), tracks, RULES)
    assert flags(towed) == [False] * len(towed)  # the run of agreeing fixes is confirmed
    assert live == towed


def test_slow_drift_of_a_parked_tracker_is_never_an_outlier() -> None:
    rng = random.Random(7)
    lat, lon = BERLIN
    seq = []
    for k in range(720):  # 12 h, a fix a minute, wandering with multipath jitter
        lat += rng.gauss(0, 0.00003)
        lon += rng.gauss(0, 0.00005)
        seq.append(fix(60 * k, lat + rng.gauss(0, 0.0002), lon, accuracy=25.0))
    live, _ = advance(list(seq), {}, RULES)
    assert len(live) == len(seq) and not any(flags(seq))


def test_a_real_250_kmh_motorway_drive_is_accepted() -> None:
    seq = drive((48.0, 11.0), 250, 600, every=1, noise_m=8, bearing_deg=315)
    tracks: dict[str, DeviceTrack] = {}
    accepted = 0
    for k in range(0, len(seq), 50):  # batches of 50 fixes
        live, moved = advance(seq[k:k + 50], tracks, RULES)
        tracks.update(moved)
        accepted += len(live)
    assert accepted == len(seq) and not any(flags(seq))


def test_devices_are_independent() -> None:
    live, moved = advance([fix(0, 1, 1, "a"), fix(0, 50, 50, "b")], {}, Rules(10.0))
    assert len(live) == 2 and set(moved) == {"a", "b"}


def test_confirm_one_follows_every_jump() -> None:
    tracks = seed({"d": LastFix(T0, *BERLIN)})
    live, _ = advance([fix(1, 0.0, 0.0)], tracks, Rules(300 / 3.6, confirm=1))
    assert len(live) == 1 and not live[0].outlier
