"""The ETA stage of ingest: every active shipment's ``eta``, ``eta_low``, ``eta_high``,
``remaining_m``, ``late_probability``, ``at_risk`` and ``eta_first`` from the batch's
accepted fixes (``shiptrack.eta``, docs/ETA.md "Integration (ingest)"; the decisions are
in docs/DESIGN.md "ETA in ingest").

``EtaStage.process`` takes the fixes that advanced their devices' live positions (in
time order), the active shipments of each device and where a place is (both from the
batch's ``TrackingView``, passed in), and returns an ``EtaOutcome``: the shipment fields
to write, the events (``shipment.eta_changed``, ``shipment.at_risk``,
``shipment.at_risk_cleared``) and the ``eta`` stream messages. It is pure: no I/O, and
it works on copies of the per-device ``Motion`` and per-shipment ``Progress``, so nothing
is applied until ``commit`` (after the batch's transaction committed); a batch that fails
leaves the stage as it was, and the same fixes give the same events with the same ids.

A newer history file (``shiptrack eta-learn`` rewrites ``SHIPTRACK_ETA_HISTORY``) is
taken without a restart: the pipeline calls ``reload_history`` before each batch (the
one method here that reads a file), which looks at the file's mtime at most every
``RELOAD_EVERY_S`` and swaps the estimator's history between two batches.

Per batch: every fix is observed (the device's motion) and followed along the routes of
the device's shipments; each shipment is estimated once, at its device's latest fix.
"""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

from ingest.tracking_model import Area, ShipmentTrack
from shiptrack.config import Settings
from shiptrack.eta.alerts import (
    ETA_CHANGED,
    AtRiskBasis,
    at_risk_change,
    eta_changed,
    eta_fields,
    is_at_risk,
    late_probability,
)
from shiptrack.eta.history import History
from shiptrack.eta.model import EtaEstimator, Plan, Progress
from shiptrack.eta.route import Route, RouteError
from shiptrack.eta.speed import Motion
from shiptrack.events import Event, make_event
from shiptrack.fix import Fix
from shiptrack.shipments import FINAL

log = logging.getLogger("shiptrack.ingest")

Anchor = Callable[[Area], "tuple[float, float] | None"]
_UNSET: Any = object()
RELOAD_EVERY_S = 60.0  # how often the history file's mtime is looked at


@dataclass(slots=True)
class EtaRow:
    """One shipment's new ETA fields (whole seconds, as in the stream messages)."""

    shipment_id: str
    eta: datetime
    eta_low: datetime
    eta_high: datetime
    remaining_m: float
    at_risk: bool
    announced: datetime | None  # the ETA last announced by shipment.eta_changed
    late_probability: float | None = None  # chance of arriving after promised_by
    eta_first: datetime | None = None  # the first ETA of the shipment


@dataclass(slots=True)
class EtaOutcome:
    rows: list[EtaRow] = field(default_factory=list)  # sorted by shipment id
    events: list[Event] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)  # LIVE_ETA, flat
    motions: dict[str, Motion] = field(default_factory=dict)
    progress: dict[str, Progress] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)  # shipments to forget (delivered)

    def empty(self) -> bool:
        return not (self.rows or self.events)

    def row_arrays(self) -> tuple[list[Any], ...]:
        """``UPDATE_ETAS``'s parameters."""
        r = self.rows
        return ([x.shipment_id for x in r], [x.eta for x in r], [x.eta_low for x in r],
                [x.eta_high for x in r], [x.remaining_m for x in r], [x.at_risk for x in r],
                [x.announced for x in r], [x.late_probability for x in r])


@dataclass(frozen=True, slots=True)
class _Planned:
    route: dict[str, Any] | None
    destination: tuple[float, float]
    plan: Plan


def load_history(path: str | None) -> History:
    """The learned history named by ``SHIPTRACK_ETA_HISTORY``; defaults without one, or
    (logged) when it cannot be read: a bad file costs ETA accuracy, never positions."""
    if not path:
        return History()
    try:
        return History.load(Path(path))
    except Exception:
        log.exception("ETA history %s is unreadable; using the defaults", path)
        return History()


class EtaStage:
    def __init__(self, estimator: EtaEstimator, anchor: Anchor = lambda area: None,
                 change: timedelta = timedelta(minutes=10),
                 basis: AtRiskBasis = "eta_high", history_path: str | None = None,
                 threshold: float = 0.5) -> None:
        self.estimator = estimator
        self.history_path = history_path  # reloaded when its mtime changes
        self._history_mtime = _mtime(history_path)
        self._history_checked = time.monotonic()
        self.anchor = anchor  # a destination's point, unless process is given one
        self.change = change
        self.basis = basis
        self.threshold = threshold  # late_probability that makes at_risk (basis)
        self.motions: dict[str, Motion] = {}
        self.progress: dict[str, Progress] = {}
        self.plans: dict[str, _Planned] = {}  # made once per route/destination, immutable
        # the alert state as committed; a shipment not here starts from what was loaded
        self.announced: dict[str, datetime | None] = {}
        self.at_risk: dict[str, bool] = {}
        self.first: dict[str, datetime] = {}  # eta_first as committed

    @classmethod
    def from_settings(cls, settings: Settings,
                      anchor: Anchor = lambda area: None) -> EtaStage:
        return cls(EtaEstimator(load_history(settings.eta_history)), anchor,
                   timedelta(minutes=settings.eta_change_minutes), settings.at_risk_basis,
                   settings.eta_history, settings.at_risk_probability)

    def reload_history(self, now: float | None = None) -> bool:
        """Take the history file if it changed since it was loaded, looking at most every
        ``RELOAD_EVERY_S`` (``now``: ``time.monotonic()``); True when one was taken. An
        unreadable file is logged and the history in use kept."""
        now = time.monotonic() if now is None else now
        if not self.history_path or now - self._history_checked < RELOAD_EVERY_S:
            return False
        self._history_checked = now
        mtime = _mtime(self.history_path)
        if mtime is None or mtime == self._history_mtime:
            return False
        self._history_mtime = mtime
        try:
            self.estimator.history = History.load(Path(self.history_path))
        except Exception:
            log.exception("ETA history %s is unreadable; keeping the one in use",
                          self.history_path)
            return False
        log.info("ETA history reloaded from %s", self.history_path)
        return True

    # the batch -------------------------------------------------------------------------

    def process(self, fixes: Sequence[Fix], shipments: Mapping[str, Iterable[ShipmentTrack]],
                skip: Iterable[str] = (), anchor: Anchor | None = None) -> EtaOutcome:
        """``fixes``: the batch's live fixes in ts order; ``shipments``: the active ones of
        each device; ``skip``: shipments not to estimate (delivered in this batch);
        ``anchor``: a destination's point (``TrackingView.area_anchor``)."""
        out = EtaOutcome(dropped=set(skip))
        point = anchor or self.anchor
        per_device: dict[str, list[Fix]] = defaultdict(list)
        for f in fixes:
            per_device[f.device_id].append(f)
        estimator = self.estimator
        for device_id, seen in per_device.items():
            before = self.motions.get(device_id)
            motion = Motion() if before is None else msgspec.structs.replace(before)
            work = [w for s in shipments.get(device_id, ())
                    if s.id not in out.dropped and s.status not in FINAL
                    and (w := self._work(s, point)) is not None]
            for f in seen[:-1]:
                estimator.observe(motion, f)
                t = f.ts.timestamp()
                for _, plan, progress in work:
                    estimator.track_at(plan, progress, motion, t, f.lat, f.lon,
                                       f.accuracy or 0.0)
            last = seen[-1]
            estimator.observe(motion, last)
            out.motions[device_id] = motion
            for ship, plan, progress in work:
                out.progress[ship.id] = progress
                self._estimate(out, ship, plan, progress, motion, last)
        out.rows.sort(key=lambda r: r.shipment_id)
        return out

    def _work(self, ship: ShipmentTrack,
              anchor: Anchor) -> tuple[ShipmentTrack, Plan, Progress] | None:
        """The shipment's plan (remade when its route or destination changed, and then
        its progress starts afresh) and a copy of its progress; None without a usable
        destination."""
        destination = anchor(ship.destination)
        if destination is None:
            return None
        planned = self.plans.get(ship.id)
        progress = self.progress.get(ship.id)
        if planned is None or planned.destination != destination \
                or planned.route != ship.route:
            route = None
            if ship.route is not None:
                try:
                    route = Route.from_geojson(ship.route)
                except RouteError as exc:
                    log.warning("shipment %s: route unusable for the ETA (%s)", ship.id, exc)
            planned = _Planned(ship.route, destination,
                               self.estimator.plan(destination, route))
            self.plans[ship.id] = planned  # derived from the shipment only: safe to keep
            progress = None
        return ship, planned.plan, (Progress() if progress is None
                                    else msgspec.structs.replace(progress))

    def _estimate(self, out: EtaOutcome, ship: ShipmentTrack, plan: Plan, progress: Progress,
                  motion: Motion, fix: Fix) -> None:
        result = self.estimator.estimate(plan, progress, motion, fix)
        fields = eta_fields(result)
        announced = self.announced.get(ship.id, _UNSET)
        if announced is _UNSET:
            announced = ship.eta_announced
        was = self.at_risk.get(ship.id, ship.at_risk)
        eta = result.eta.replace(microsecond=0)
        common = {"device_id": ship.device_id, "shipment_id": ship.id}
        if eta_changed(announced, eta, self.change):
            data = {**fields, "previous_eta": _iso(announced)}
            out.events.append(make_event(ETA_CHANGED, fix.ts, data=data, **common))
            announced = eta
        chance = late_probability(result, ship.promised_by, fix.ts)
        now = is_at_risk(result, ship.promised_by, self.basis, chance, self.threshold)
        change = at_risk_change(was, now)
        if change is not None:
            data = {**fields, "promised_by": _iso(ship.promised_by), "basis": self.basis,
                    "late_probability": chance}
            out.events.append(make_event(change, fix.ts, data=data, **common))
        first = self.first.get(ship.id) or ship.eta_first or eta
        out.rows.append(EtaRow(ship.id, eta, result.eta_low.replace(microsecond=0),
                               result.eta_high.replace(microsecond=0), fields["remaining_m"],
                               now, announced, chance, first))
        out.messages.append({**common, "ts": _iso(fix.ts), **fields, "at_risk": now,
                             "promised_by": _iso(ship.promised_by),
                             "late_probability": chance, "eta_first": _iso(first)})

    # after the commit ------------------------------------------------------------------

    def commit(self, outcome: EtaOutcome) -> None:
        """Apply an outcome whose writes were committed."""
        self.motions.update(outcome.motions)
        self.progress.update(outcome.progress)
        for row in outcome.rows:
            self.announced[row.shipment_id] = row.announced
            self.at_risk[row.shipment_id] = row.at_risk
            if row.eta_first is not None:
                self.first[row.shipment_id] = row.eta_first
        for sid in outcome.dropped:
            for table in (self.progress, self.plans, self.announced, self.at_risk,
                          self.first):
                table.pop(sid, None)

    def forget_alerts(self) -> None:
        """After losing the database connection: take the announced ETAs and at-risk
        flags from the shipments as reloaded (what was committed)."""
        self.announced.clear()
        self.at_risk.clear()
        self.first.clear()

    def forget(self, device_ids: Iterable[str] | None = None,
               shipment_ids: Iterable[str] = ()) -> None:
        """Drop the motion of these devices and the progress and alert state of these
        shipments (None: everything), so that they start from what was committed."""
        if device_ids is None:
            self.motions.clear()
            self.progress.clear()
            self.forget_alerts()
            return
        for d in device_ids:
            self.motions.pop(d, None)
        for sid in shipment_ids:
            for table in (self.progress, self.announced, self.at_risk, self.first):
                table.pop(sid, None)


def _mtime(path: str | None) -> int | None:
    try:
        return os.stat(path).st_mtime_ns if path else None
    except OSError:
        return None


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat(timespec="seconds").replace("+00:00", "Z")
