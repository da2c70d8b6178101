"""The blend of candidates (``stacking``): on a thin history the ETA leans on whichever
candidate has done best at this stage of past trips, so it is no worse than the better
naive baseline from the first tens of trips on."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

from shiptrack.eta.evaluate import Replay
from shiptrack.eta.stacking import LEARNED, PRIOR, Stack, candidates, share_bin
from shiptrack.eta.trips import parse_trip

from .test_eta_eval import KM_LON, T0

H = 3600.0
PRIOR_TRIPS = 5  # trips before the records are enough (``MIN_RECORDS``) in these runs


def test_weights_follow_the_record_and_start_from_the_prior() -> None:
    stack = Stack()
    cands = candidates(2 * H, None, 3 * H, 1 * H)
    assert stack.blend(cands, 1 * H) == pytest.approx(PRIOR[0] * 2 * H + PRIOR[3] * 1 * H)
    # the trip's own speed has always been right, the physical model twice too slow
    for i in range(80):
        left = H * (1 + i % 3)
        stack.add(candidates(2 * left, None, 1.5 * left, left * 1.02), H, left)
    w = stack.weights(share_bin(H, cands))
    assert w[LEARNED] == 0.0  # no correction has been fitted: it earns nothing
    assert w[3] > 0.99
    assert stack.blend(cands, H) == pytest.approx(1 * H, rel=0.01)


def test_the_learned_candidate_is_judged_only_where_it_existed() -> None:
    stack = Stack()
    for i in range(80):
        left = H * (1 + i % 3)
        stack.add(candidates(2 * left, None, 2 * left, 2 * left), H, left)  # before a fit
    for i in range(80):
        left = H * (1 + i % 3)
        stack.add(candidates(2 * left, left, 2 * left, 2 * left), H, left)
    w = stack.weights(share_bin(H, candidates(2 * H, H, 2 * H, 2 * H)))
    assert w[LEARNED] > 0.99
    saved = Stack.from_json(stack.to_json())
    assert np.allclose(saved.weights(2), stack.weights(2))
    assert math.isnan(saved.records[2][0][LEARNED])


def vessels(n: int, seed: int = 3) -> list[dict[str, Any]]:
    """Slow craft on one lane, each at its own speed (8-30 km/h), which changes by up to
    a quarter at 40 % of the way: the fleet's speed says little, the trip's own a lot."""
    rng = random.Random(seed)
    out, start = [], float(T0)
    for k in range(n):
        kmh, km = rng.uniform(8.0, 30.0), rng.uniform(15.0, 40.0)
        later = kmh * rng.uniform(0.8, 1.25)
        points, t, x = [], start, 0.0
        while x < km:
            points.append({"ts": t, "lat": 52.0, "lon": 13.0 + x * KM_LON})
            x += (kmh if x < 0.4 * km else later) / 60.0 * 5.0
            t += 300.0
        points.append({"ts": t, "lat": 52.0, "lon": 13.0 + km * KM_LON})
        out.append({"trip_id": f"v{k:03d}", "points": points})
        start = t + 600.0
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_cold_start_is_no_worse_than_the_better_baseline(seed: int) -> None:
    """30 trips from an empty history: once the first few have arrived (the prior's:
    fewer than ``MIN_RECORDS`` records), the ETA is no worse than the better baseline at
    25/50/75 % (without the blend it is 10-140 % worse here: the physical model with
    the default profile, and no correction before ``FIRST_FIT_TRIPS``)."""
    report = Replay().run([parse_trip(r) for r in vessels(30, seed)])

    def mae(model: str, k: int) -> float:
        return float(np.abs(report.errors[model][k][PRIOR_TRIPS:]).mean())

    for k in (25, 50, 75):
        best = min(mae("constant_speed", k), mae("avg_speed_so_far", k))
        assert mae("shiptrack", k) <= best * 1.02, (k, mae("shiptrack", k), best)
