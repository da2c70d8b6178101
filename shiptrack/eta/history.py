"""What the ETA knows from the past: speed profile, rests, interval calibration, detour.

``History`` is learned from replayed movement (the ``Step``s that ``speed.observe``
returns for each fix of a device: from stored positions, or from recorded trips) and from
finished trips (their road-detour factor, the fleet's average trip speed, and the errors
of the ETAs made during them, for the calibration). It is plain data: ``to_json`` /
``from_json`` (``save`` / ``load``) move it between the process that learns it and the
ones that use it (``shiptrack eta-learn`` writes one; ingest can load it at start).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from shiptrack.eta.calibration import Calibration
from shiptrack.eta.correction import Correction, Learner, target
from shiptrack.eta.lanes import FineSpeeds, Lanes
from shiptrack.eta.profile import SpeedProfile, cell_of, hour_of_week
from shiptrack.eta.rests import BREAK_S, RestModel
from shiptrack.eta.speed import Step
from shiptrack.eta.stacking import NO_BAND, Stack
from shiptrack.eta.trip_speeds import TripSpeeds

DEFAULT_DETOUR = 1.25  # road distance over great-circle distance where nothing is known
DETOUR_PRIOR = 5  # trips of evidence that outweigh the default detour
DEFAULT_FLEET_KMH = 60.0
MAX_DETOUR_SAMPLES = 2000
FORMAT = 1


class History:
    def __init__(self, profile: SpeedProfile | None = None, rests: RestModel | None = None,
                 calibration: Calibration | None = None) -> None:
        self.profile = profile or SpeedProfile()
        self.rests = rests or RestModel()
        self.calibration = calibration or Calibration()
        self.detours: list[float] = []  # road distance / great-circle distance, per trip
        self.fleet_m = 0.0  # trip distances and durations, for the fleet's mean trip speed
        self.fleet_s = 0.0
        self.trip_speeds = TripSpeeds()  # ... and by trip length
        self._detour: float | None = None
        self.lanes = Lanes()  # the history of similar trips
        self.fine = FineSpeeds()  # moving speed by small cell
        self.learner = Learner()  # samples for the correction (not saved)
        self.correction: Correction | None = None  # the learned correction, once fitted
        self.stack = Stack()  # how to weigh the candidates (``stacking``)

    # -- learning ------------------------------------------------------------------------

    def learn_step(self, step: Step, trip_start: float | None = None) -> None:
        """Learn from one step of a device's movement. A stop that began before
        ``trip_start`` is the wait between two trips (a hub, a depot): it resets the
        driving clocks (``speed.observe`` did) but is neither a break nor a local stop."""
        if step.moving:
            self.fine.add(step.lat, step.lon, step.metres, step.seconds)
            self.profile.add_move(cell_of(step.lat, step.lon), hour_of_week(step.ts),
                                  step.metres, step.seconds)
            self.rests.drove(step.seconds, step.since_break_s, step.since_rest_s,
                             step.break_seen, step.rest_seen)
        stop = step.stop
        if stop is None or (trip_start is not None and stop.start < trip_start):
            return
        if stop.seconds < BREAK_S:
            self.profile.add_stop(cell_of(stop.lat, stop.lon), stop.seconds)
        self.rests.stopped(stop.seconds, stop.since_break_s, stop.since_rest_s, stop.break_seen,
                           stop.rest_seen)

    def learn_trip(self, road_m: float, direct_m: float, duration_s: float) -> None:
        """A finished trip: its road distance, great-circle distance and duration."""
        if direct_m > 1000.0 and road_m >= direct_m:
            self.detours.append(road_m / direct_m)
            del self.detours[:-MAX_DETOUR_SAMPLES]
            self._detour = None
        if duration_s > 0.0 and road_m > 0.0:
            self.fleet_m += road_m
            self.fleet_s += duration_s
            self.trip_speeds.add(road_m, duration_s)

    def learn_estimate(self, row: tuple[float, ...], lanes: tuple[str, ...],
                       raw: tuple[float, float, float] | None, share: float,
                       predicted_s: float, actual_s: float,
                       candidates: tuple[float, ...] = (), band: tuple[float, ...] = ()
                       ) -> None:
        """An estimate made during a trip that has now arrived: a sample for the
        correction, a visit of its lanes, when the correction made it a conformal score,
        and a record for the blend and its interval (``stacking``)."""
        y = target(actual_s, predicted_s)
        if row:
            self.learner.add(list(row), y)
        if lanes:
            self.lanes.add(lanes, actual_s)
        if raw is not None and self.correction is not None:
            self.correction.score(raw, share, y)
        if candidates:
            self.stack.add(candidates[:-1], candidates[-1], actual_s, band or NO_BAND)

    def trip_learned(self, refit: bool = True) -> bool:
        """A trip's lessons are all in; refit the correction when it is due (True then)."""
        self.learner.trip_done()
        if refit and self.learner.due():
            self.refit()
            return True
        return False

    def refit(self) -> None:
        """Fit the correction on the samples learned so far (none without enough)."""
        if len(self.learner.rows) >= 2 * 40:
            self.correction = self.learner.refit(self.correction)

    # -- figures -------------------------------------------------------------------------

    @property
    def detour(self) -> float:
        """Road-detour factor: the median over trips, shrunk to the default when few."""
        if self._detour is None:
            n = len(self.detours)
            median = statistics.median(self.detours) if n else DEFAULT_DETOUR
            self._detour = (n * median + DETOUR_PRIOR * DEFAULT_DETOUR) / (n + DETOUR_PRIOR)
        return self._detour

    @property
    def fleet_kmh(self) -> float:
        """Mean trip speed over the trips learned (stops included), or 60 km/h."""
        return 3.6 * self.fleet_m / self.fleet_s if self.fleet_s > 0 else DEFAULT_FLEET_KMH

    def length_kmh(self, length_m: float) -> float:
        """Mean trip speed of the trips about ``length_m`` long (``trip_speeds``)."""
        return 3.6 * self.trip_speeds.speed_ms(length_m, self.fleet_kmh / 3.6)

    # -- persistence ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "profile": self.profile.to_json(),
                "rests": self.rests.to_json(), "calibration": self.calibration.to_json(),
                "detours": [round(d, 4) for d in self.detours],
                "fleet": [round(self.fleet_m, 1), round(self.fleet_s, 1)],
                "trip_speeds": self.trip_speeds.to_json(),
                "lanes": self.lanes.to_json(), "fine": self.fine.to_json(),
                "correction": None if self.correction is None else self.correction.to_json(),
                "stack": self.stack.to_json()}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> History:
        if obj.get("format") != FORMAT:
            raise ValueError(f"not an ETA history of format {FORMAT}")
        history = cls(SpeedProfile.from_json(obj["profile"]), RestModel.from_json(obj["rests"]),
                      Calibration.from_json(obj["calibration"]))
        history.detours = [float(d) for d in obj.get("detours", [])]
        history.fleet_m, history.fleet_s = (float(v) for v in obj.get("fleet", [0.0, 0.0]))
        history.trip_speeds = TripSpeeds.from_json(obj.get("trip_speeds"))
        if obj.get("lanes"):
            history.lanes = Lanes.from_json(obj["lanes"])
        if obj.get("fine"):
            history.fine = FineSpeeds.from_json(obj["fine"])
        if obj.get("correction"):
            history.correction = Correction.from_json(obj["correction"])
        if obj.get("stack"):
            history.stack = Stack.from_json(obj["stack"])
        return history

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), separators=(",", ":")), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> History:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
