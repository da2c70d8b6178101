"""Breaks and rests: when a driver will stop, and for how long, learned from history.

Long-haul stops follow drivers' hours (EU 561/2006: a 45-minute break after at most
4.5 h of driving, a daily rest of 9-11 h after at most 9 h), so what predicts the next
one is the *driving clock*: moving time since the last break, and since the last rest.
A stop of at least ``BREAK_S`` is a break, of at least ``REST_S`` a rest (a rest is also
a break). Shorter stops are the speed profile's business (``profile.add_stop``).

Each kind has a hazard over its clock (piecewise constant in ``BIN_S`` bins: events over
exposure, each bin shrunk towards the overall rate by ``PRIOR_S`` of exposure), learned
from the driving clocks the replayed history went through, and a typical duration (the
median of those seen). Before history says otherwise, the rules hold (``Rules``, EU by
default): as if ``PRIOR_SPELLS`` drivers had been seen stopping at the legal limit, each
for about the legal duration (a clock that only counts from the first fix seen starts as
if the driver had just come on duty); real spells soon outweigh them.
``median_wait(clock)`` is the driving time until the next stop is more likely than not to
have begun; the ETA inserts a stop there when it falls before the arrival, which is what
the median arrival time needs.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

BREAK_S = 40 * 60.0  # EU break: 45 min (less what sparse fixes cut off a stop)
REST_S = 8 * 3600.0  # EU daily rest: 11 h, reducible to 9 h
MIN_STOP_S = 120.0  # shorter stops are not considered "standing" for the ETA
MAYBE_BREAK_S = 600.0  # standing this long, a stop may be a break or a rest at any clock
BIN_S = 900.0
BINS = 96  # 24 h of driving clock; beyond, the last bin's rate holds
END_S = BINS * BIN_S
PRIOR_S = 3600.0  # exposure that a bin's own rate needs to outweigh the overall rate
NEAR_CLOCK_S = 5400.0  # an ongoing stop is compared with stops begun at a clock this close
PRIOR_SPELLS = 4  # how many drivers' worth of evidence the rules are worth
MIN_LIKE = 2  # stops like an ongoing one needed to say how long it will last


@dataclass(frozen=True, slots=True)
class Rules:
    """Drivers' hours assumed before history shows how drivers really stop."""

    break_after_s: float = 4.5 * 3600
    break_s: float = 45 * 60.0
    rest_after_s: float = 9 * 3600.0
    rest_s: float = 11 * 3600.0


EU = Rules()


class Hazard:
    """Events over exposure along a clock, in ``BIN_S`` bins."""

    def __init__(self) -> None:
        self.exposure: NDArray[np.float64] = np.zeros(BINS)
        self.events: NDArray[np.float64] = np.zeros(BINS)
        self._prior = (np.zeros(BINS), np.zeros(BINS))  # (exposure, events), not saved
        self._rates: NDArray[np.float64] | None = None
        self._cum: list[float] | None = None

    def expose(self, clock_s: float, seconds: float) -> None:
        """``seconds`` of driving from ``clock_s`` on without the event."""
        while seconds > 0.0:
            b = min(int(clock_s // BIN_S), BINS - 1)
            chunk = seconds if b == BINS - 1 else min(seconds, (b + 1) * BIN_S - clock_s)
            self.exposure[b] += chunk
            clock_s += chunk
            seconds -= chunk
        self._rates = self._cum = None

    def event(self, clock_s: float) -> None:
        self.events[min(int(clock_s // BIN_S), BINS - 1)] += 1.0
        self._rates = self._cum = None

    def assume(self, event_clocks: list[float]) -> None:
        """Prior spells: one from clock 0 to each of ``event_clocks``, ending in the event."""
        exposure, events = self._prior
        exposure[:] = 0.0
        events[:] = 0.0
        for clock in event_clocks:
            b = min(int(clock // BIN_S), BINS - 1)
            exposure[:b] += BIN_S
            exposure[b] += clock - b * BIN_S
            events[b] += 1.0
        self._rates = self._cum = None

    def rates(self) -> NDArray[np.float64]:
        """Events per driving second, per bin."""
        if self._rates is None:
            total = float(self.exposure.sum())  # the overall rate: from data only, so
            overall = float(self.events.sum()) / total if total > 0 else 0.0  # the rules
            exposure, events = self.exposure + self._prior[0], self.events + self._prior[1]
            self._rates = (events + PRIOR_S * overall) / (exposure + PRIOR_S)  # keep shape
        return self._rates

    def _curve(self) -> list[float]:
        """Cumulative hazard at each bin edge (``BINS + 1`` values)."""
        if self._cum is None:
            self._cum = [0.0, *np.cumsum(self.rates() * BIN_S).tolist()]
        return self._cum

    def at(self, clock_s: float) -> float:
        """The cumulative hazard at ``clock_s`` (the last bin's rate beyond the bins)."""
        cum = self._curve()
        if clock_s >= END_S:
            return cum[-1] + float(self.rates()[-1]) * (clock_s - END_S)
        i = int(clock_s // BIN_S)
        return cum[i] + (clock_s / BIN_S - i) * (cum[i + 1] - cum[i])

    def median_wait(self, clock_s: float) -> float:
        """Driving seconds from ``clock_s`` until the event has more likely than not
        happened (``inf`` if it never does)."""
        target = self.at(clock_s) + math.log(2.0)
        cum = self._curve()
        if target > cum[-1]:
            last = float(self.rates()[-1])
            return END_S + (target - cum[-1]) / last - clock_s if last > 0.0 else math.inf
        i = bisect.bisect_left(cum, target)  # cum[i - 1] < target <= cum[i]
        return (i - 1 + (target - cum[i - 1]) / (cum[i] - cum[i - 1])) * BIN_S - clock_s

    def chance(self, clock_s: float, driving_s: float) -> float:
        """The probability that the event happens within ``driving_s`` from ``clock_s``."""
        return 1.0 - math.exp(-(self.at(clock_s + driving_s) - self.at(clock_s)))

    def to_json(self) -> dict[str, list[float]]:
        return {"exposure": [round(float(v), 1) for v in self.exposure],
                "events": [float(v) for v in self.events]}

    @classmethod
    def from_json(cls, obj: dict[str, list[float]]) -> Hazard:
        hazard = cls()
        hazard.exposure[:] = np.asarray(obj["exposure"], dtype=np.float64)[:BINS]
        hazard.events[:] = np.asarray(obj["events"], dtype=np.float64)[:BINS]
        return hazard


class RestModel:
    """Breaks and rests over the driving clocks, and the stops seen (for one in progress).

    Each kind has two hazards: over a clock that counts from a stop of that kind seen in
    the data, and over one that only counts from the first fix seen (a device met in the
    middle of its day): the second is a different, flatter curve.
    """

    def __init__(self, rules: Rules = EU) -> None:
        self.rules = rules
        self.breaks = (Hazard(), Hazard())  # [clock from first fix, clock from a break]
        self.rests = (Hazard(), Hazard())
        self._assume()
        self.stops: list[tuple[float, float, bool]] = []  # (seconds, rest clock, rest seen)
        self._arrays: tuple[NDArray[np.float64], ...] | None = None
        self._typical: dict[tuple[float, float], float] = {}

    def _assume(self) -> None:
        """The rules as prior spells, stopping at the limit (long-haul drivers use their
        hours); a clock that only counts from the first fix seen starts out as if the
        driver had just come on duty."""
        for hazards, limit in ((self.breaks, self.rules.break_after_s),
                               (self.rests, self.rules.rest_after_s)):
            for hazard in hazards:
                hazard.assume([limit] * PRIOR_SPELLS)

    # -- learning ------------------------------------------------------------------------

    def drove(self, seconds: float, since_break_s: float, since_rest_s: float,
              break_seen: bool, rest_seen: bool) -> None:
        self.breaks[break_seen].expose(since_break_s, seconds)
        self.rests[rest_seen].expose(since_rest_s, seconds)

    def stopped(self, seconds: float, since_break_s: float, since_rest_s: float,
                break_seen: bool, rest_seen: bool) -> None:
        if seconds >= REST_S:
            self.rests[rest_seen].event(since_rest_s)
        elif seconds >= BREAK_S:
            self.breaks[break_seen].event(since_break_s)
        if seconds >= MIN_STOP_S:
            self.stops.append((seconds, since_rest_s, rest_seen))
            self._arrays = None
            self._typical.clear()

    # -- predictions ---------------------------------------------------------------------

    def to_break(self, since_break_s: float, seen: bool) -> float:
        """Driving seconds until the next break is more likely than not to have begun."""
        return self.breaks[seen].median_wait(since_break_s)

    def to_rest(self, since_rest_s: float, seen: bool) -> float:
        return self.rests[seen].median_wait(since_rest_s)

    def doubt(self, driving_s: float, since_break_s: float, since_rest_s: float,
              break_seen: bool, rest_seen: bool, least: float = 0.2) -> tuple[str, float]:
        """Which stop it is a toss-up whether it comes within ``driving_s`` more driving
        (its chance, or the chance against it, at least ``least``): "rest", "break" or
        "" (neither; the rest wins: it weighs 11 hours, a break 45 minutes), and what the
        other outcome would change: minus its duration when the median schedule has it,
        plus when it has not."""
        kind, other, _ = self.doubt_chance(driving_s, since_break_s, since_rest_s, break_seen,
                                           rest_seen, least)
        return kind, other

    def doubt_chance(self, driving_s: float, since_break_s: float, since_rest_s: float,
                     break_seen: bool, rest_seen: bool, least: float = 0.2
                     ) -> tuple[str, float, float]:
        """``doubt``, and the chance that the doubted stop comes (0 when none is)."""
        for kind, hazards, clock, seen, least_s, most_s in (
                ("rest", self.rests, since_rest_s, rest_seen, REST_S, math.inf),
                ("break", self.breaks, since_break_s, break_seen, BREAK_S, REST_S)):
            p = hazards[seen].chance(clock, driving_s)
            if min(p, 1.0 - p) >= least:
                duration = self.typical(least_s, most_s)
                return kind, -duration if p >= 0.5 else duration, p
        return "", 0.0, 0.0

    def _stop_arrays(self) -> tuple[NDArray[np.float64], ...]:
        """The stops seen plus the rules' (``PRIOR_SPELLS`` breaks and rests begun at
        their limit, for either kind of clock, lasting from the legal minimum to 30 % and
        9 % longer): (seconds, clock, seen)."""
        if self._arrays is None:
            rules = self.rules
            prior = [(rules.break_s * (1.0 + 0.1 * i), rules.break_after_s, seen)
                     for i in range(PRIOR_SPELLS) for seen in (0, 1)]
            prior += [(rules.rest_s * (1.0 + 0.03 * i), rules.rest_after_s, seen)
                      for i in range(PRIOR_SPELLS) for seen in (0, 1)]
            rows = np.asarray(self.stops + prior, dtype=np.float64)
            self._arrays = (rows[:, 0], rows[:, 1], rows[:, 2])
        return self._arrays

    def typical(self, least_s: float, most_s: float = math.inf) -> float:
        """Median duration of the stops between ``least_s`` and ``most_s`` (with the
        rules' among them: they decide while few were seen)."""
        found = self._typical.get((least_s, most_s))
        if found is None:
            seconds = self._stop_arrays()[0]
            chosen = seconds[(seconds >= least_s) & (seconds < most_s)]
            found = float(np.median(chosen)) if len(chosen) else least_s
            self._typical[(least_s, most_s)] = found
        return found

    def remaining_stop(self, still_s: float, since_rest_s: float, rest_seen: bool) -> float:
        """Seconds an ongoing stop (standing ``still_s`` so far, begun at that rest clock)
        still lasts: the median of what stops that got this far, begun at a similar
        clock, went on to last (the rules' stops among them); else of what stops that got
        this far went on to last whatever their clock: those seen and, once it has stood
        ``MAYBE_BREAK_S``, the rules' too; else, with fewer than ``MIN_LIKE`` such stops,
        as long again as it has lasted (the median of what is left of a stop of unknown
        scale). The rules' stops speak for a stop begun near their limits or already
        long: a taxi standing five minutes an hour into its shift is not one of their
        45-minute breaks or 11-hour rests (taken for one, it made a 10-minute trip's
        ETA six hours)."""
        if still_s < MIN_STOP_S:
            return 0.0
        seconds, clocks, seen = self._stop_arrays()
        longer = seconds > still_s
        near = longer & (seen == float(rest_seen)) & (np.abs(clocks - since_rest_s)
                                                      <= NEAR_CLOCK_S)
        anywhere = longer.copy()
        if still_s < MAYBE_BREAK_S:
            anywhere[len(self.stops):] = False  # the rules' stops come after those seen
        for chosen in (near, anywhere):
            if int(chosen.sum()) >= MIN_LIKE:
                return float(np.median(seconds[chosen])) - still_s
        return still_s

    # -- persistence ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"rules": dataclasses.asdict(self.rules),
                "breaks": [h.to_json() for h in self.breaks],
                "rests": [h.to_json() for h in self.rests],
                "stops": [[round(s, 1), round(c, 1), int(seen)] for s, c, seen in self.stops]}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> RestModel:
        model = cls(Rules(**obj["rules"]) if "rules" in obj else EU)
        b0, b1 = (Hazard.from_json(h) for h in obj["breaks"])
        r0, r1 = (Hazard.from_json(h) for h in obj["rests"])
        model.breaks, model.rests = (b0, b1), (r0, r1)
        model._assume()
        model.stops = [(float(s), float(c), bool(seen)) for s, c, seen in obj.get("stops", [])]
        return model
