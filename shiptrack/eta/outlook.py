"""What an ETA expects of the time left, as a distribution: its quantiles and the chance of
being late.

An ``Outlook`` is a mixture of *split normals* in log seconds (a median, one spread
below and one above it): a learned prediction is one part, fitted to its own 10th, 50th
and 90th percentiles; a break or rest that may or may not come before the arrival is
two parts, each weighted by its chance. So the interval is the mixture's 10th-90th
percentiles (it spans both outcomes only when the less likely one still holds more than
a tenth of the chance), and ``late_probability`` is the chance of arriving after a
promise, weighed over both outcomes, instead of a window that spans both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z80 = 1.2815515655446004  # the standard normal's 90th percentile
MIN_SIGMA = 1e-3
FLOOR_S = 1.0


def _phi(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


@dataclass(frozen=True, slots=True)
class Part:
    weight: float
    median: float  # log seconds
    below: float  # spread below the median (log)
    above: float  # spread above it (log)

    def cdf(self, x: float) -> float:
        d = x - self.median
        return _phi(d / (self.below if d < 0 else self.above))


@dataclass(frozen=True, slots=True)
class Outlook:
    parts: tuple[Part, ...]

    @classmethod
    def from_quantiles(cls, low_s: float, mid_s: float, high_s: float,
                       coverage: float = 0.8) -> Outlook:
        """One split normal through these quantiles ((1 -+ coverage) / 2 and the median)."""
        return cls((cls.part(1.0, low_s, mid_s, high_s, coverage),))

    @staticmethod
    def part(weight: float, low_s: float, mid_s: float, high_s: float,
             coverage: float = 0.8) -> Part:
        z = Z80 if coverage == 0.8 else _inverse_phi((1.0 + coverage) / 2.0)
        lo, mid, hi = (math.log(max(v, FLOOR_S)) for v in (low_s, mid_s, high_s))
        lo, hi = min(lo, mid), max(hi, mid)
        return Part(weight, mid, max((mid - lo) / z, MIN_SIGMA), max((hi - mid) / z, MIN_SIGMA))

    def scaled(self, ratio: float) -> Outlook:
        """The same distribution with every time left multiplied by ``ratio``."""
        shift = math.log(max(ratio, 1e-9))
        return Outlook(tuple(Part(p.weight, p.median + shift, p.below, p.above)
                             for p in self.parts))

    def cdf(self, seconds: float) -> float:
        """The chance that the time left is at most ``seconds``."""
        if seconds <= 0.0:
            return 0.0
        x = math.log(max(seconds, FLOOR_S))
        total = sum(p.weight for p in self.parts)
        return sum(p.weight * p.cdf(x) for p in self.parts) / total

    def quantile(self, q: float) -> float:
        """Seconds left at the ``q`` quantile (bisection on the mixture's log scale)."""
        lo = min(p.median - 8.0 * p.below for p in self.parts)
        hi = max(p.median + 8.0 * p.above for p in self.parts)
        for _ in range(40):
            mid = (lo + hi) / 2.0
            if self.cdf(math.exp(mid)) < q:
                lo = mid
            else:
                hi = mid
        return math.exp((lo + hi) / 2.0)

    def late_probability(self, seconds_to_promise: float) -> float:
        """The chance of needing more than ``seconds_to_promise`` (1 once it has passed)."""
        return 1.0 - self.cdf(seconds_to_promise)


def _inverse_phi(p: float) -> float:
    lo, hi = -10.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if _phi(mid) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0
