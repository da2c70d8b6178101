"""GPS outliers and the live position: pure logic over a device's fixes in time order.

Each device has an accepted *track* (its live position, seeded from ``devices``) and a
few *candidate* tracks: runs of fixes that agree with each other but not with the
accepted one. Two fixes agree when the speed implied between them is at most the limit
(``SHIPTRACK_MAX_SPEED_KMH``), with twice their accuracies (or a default) as slack.

- A fix that agrees with the accepted track extends it and moves the live position; the
  candidates are dropped (a lone implausible fix between good ones stays flagged).
- A fix that does not joins the newest candidate it agrees with, or starts one; it is
  stored flagged (``outlier``) unless its candidate is confirmed.
- A candidate that reaches ``confirm`` fixes (``SHIPTRACK_OUTLIER_CONFIRM_FIXES``, 3)
  becomes the accepted track: its fixes of the batch are accepted, so a device that
  reappears far away (a restart, a ferry, a tow) gets its new position, and a batch
  that starts with a glitch never makes the consistent fixes after it outliers.
- A device with no accepted track yet (its first batch) takes the candidate with the
  most fixes (then the newest) when none reached ``confirm``.

Fixes older than the live position are stored as history without this check and never
move it backwards. Nothing here reads the database: the caller seeds the tracks from
devices' last positions and applies the returned ones after its batch committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from shiptrack.eta.geo import haversine_m
from shiptrack.fix import Fix

DEFAULT_SLACK_M = 20.0  # slack of a fix that gives no accuracy
MIN_SLACK_M = 10.0
MAX_SLACK_M = 500.0  # a worse accuracy widens the slack no further
MAX_CANDIDATES = 4  # runs kept beside the accepted track; the stalest is dropped


class LastFix(NamedTuple):
    ts: datetime
    lat: float
    lon: float
    accuracy: float | None = None


class Run(NamedTuple):
    """A candidate: its newest fix and how many fixes agreed in a row."""

    last: LastFix
    agreed: int
    first_seen: int = 0  # order of creation, for ties


class DeviceTrack(NamedTuple):
    """What the filter remembers of one device between batches."""

    accepted: LastFix | None = None
    candidates: tuple[Run, ...] = ()


@dataclass(frozen=True, slots=True)
class Rules:
    max_speed_mps: float
    confirm: int = 3


def as_last(fix: Fix) -> LastFix:
    return LastFix(fix.ts, fix.lat, fix.lon, fix.accuracy)


def _slack(accuracy: float | None) -> float:
    """Twice the reported accuracy (a 1-sigma-like radius): ~95 % of true positions."""
    if accuracy is None:
        return DEFAULT_SLACK_M
    return min(max(2.0 * accuracy, MIN_SLACK_M), MAX_SLACK_M)


def agrees(a: LastFix, b: LastFix | Fix, max_speed_mps: float) -> bool:
    """True when ``b`` could follow (or precede) ``a`` at no more than the speed limit."""
    dt = abs((b.ts - a.ts).total_seconds())
    reach = max_speed_mps * dt + _slack(a.accuracy) + _slack(b.accuracy)
    return haversine_m(a.lat, a.lon, b.lat, b.lon) <= reach


def seed(last: Mapping[str, LastFix]) -> dict[str, DeviceTrack]:
    """Tracks from the devices' stored last positions."""
    return {device: DeviceTrack(accepted=fix) for device, fix in last.items()}


class _Device:
    """One device's pass over its fixes of a batch (mutable working copy)."""

    def __init__(self, track: DeviceTrack, rules: Rules) -> None:
        self.rules = rules
        self.accepted = track.accepted
        self.runs: list[tuple[Run, list[Fix]]] = [(r, []) for r in track.candidates]
        self.taken: list[Fix] = []  # accepted fixes of this batch

    def feed(self, fix: Fix) -> None:
        accepted = self.accepted
        if accepted is not None:
            if fix.ts <= accepted.ts:
                return  # history (or a duplicate): stored, never moves the live position
            if agrees(accepted, fix, self.rules.max_speed_mps):
                fix.outlier = False
                self.taken.append(fix)
                self.accepted = as_last(fix)
                if self.runs:
                    self.runs.clear()
                return
        here = as_last(fix)
        fix.outlier = True
        for i in sorted(range(len(self.runs)), key=lambda k: self.runs[k][0].last.ts,
                        reverse=True):
            run, fixes = self.runs[i]
            if fix.ts > run.last.ts and agrees(run.last, here, self.rules.max_speed_mps):
                self.runs[i] = (run._replace(last=here, agreed=run.agreed + 1), [*fixes, fix])
                if run.agreed + 1 >= self.rules.confirm:
                    self._promote(i)
                return
        serial = max((r.first_seen for r, _ in self.runs), default=0) + 1
        self.runs.append((Run(here, 1, serial), [fix]))
        if len(self.runs) > MAX_CANDIDATES:
            self.runs.remove(min(self.runs, key=lambda r: r[0].last.ts))
        if self.rules.confirm <= 1:
            self._promote(len(self.runs) - 1)

    def _take(self, fixes: list[Fix]) -> None:
        for f in fixes:
            f.outlier = False
        self.taken.extend(fixes)
        self.accepted = as_last(fixes[-1])

    def _promote(self, i: int) -> None:
        _, fixes = self.runs.pop(i)
        self.runs.clear()
        self._take(fixes)

    def finish(self) -> DeviceTrack:
        if self.accepted is None and self.runs:
            best = max(range(len(self.runs)), key=lambda k: (
                self.runs[k][0].agreed, self.runs[k][0].last.ts, self.runs[k][0].first_seen))
            _, fixes = self.runs.pop(best)
            self._take(fixes)
        return DeviceTrack(self.accepted, tuple(r for r, _ in self.runs))


def advance(
    fixes: list[Fix], tracks: Mapping[str, DeviceTrack], rules: Rules
) -> tuple[list[Fix], dict[str, DeviceTrack]]:
    """Flag outliers in place; return the fixes that advance live positions, in ts order,
    and the new track of every device of the batch (to apply once it is committed)."""
    devices: dict[str, _Device] = {}
    for fix in sorted(fixes, key=lambda f: f.ts):
        device = devices.get(fix.device_id)
        if device is None:
            device = devices[fix.device_id] = _Device(
                tracks.get(fix.device_id, DeviceTrack()), rules)
        device.feed(fix)
    moved = {device_id: d.finish() for device_id, d in devices.items()}
    live = sorted((f for d in devices.values() for f in d.taken), key=lambda f: f.ts)
    return live, moved
