"""``shiptrack eta-learn``: the ETA's ``History`` learned from the project's own stored
positions (docs/ETA.md "Learned from the database").

Positions (outliers excluded) are streamed per device in time order through a
server-side cursor, and fed through the same code ``eta-eval`` learns with
(``evaluate.Replay``):

- every fix advances the device's ``Motion`` (``EtaEstimator.observe_at``), and each
  step outside a finished trip feeds the speed profile and the rest model
  (``History.learn_step``);
- a *finished trip* is a delivered shipment's span on its device, from its first
  in-transit milestone (``picked_up``, else ``in_transit`` / ``out_for_delivery``) to
  ``delivered``: its fixes are replayed as one recorded ``Trip`` (its route when the
  shipment has one; the last fix is the arrival), which teaches its steps, its detour
  and duration and the errors of the ETAs made during it (the calibration), exactly as
  a trip of ``eta-eval``. The device's ``Motion`` carries through, so its driving
  clocks run on from before the trip to after it. Its estimates are samples for the
  learned correction (``correction``), refitted as trips accumulate and once more at the
  end, over every trip learned.

Memory: one device's ``Motion``, the fixes of the trip under way and the list of trip
spans (one row per delivered shipment). A trip overlapping one already under way on the
same device (two shipments on one truck) is not replayed a second time: its fixes are
learned once, with the first.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from shiptrack.db.queries.eta import POSITIONS, SPANS
from shiptrack.eta.evaluate import Replay
from shiptrack.eta.history import History
from shiptrack.eta.route import Route, RouteError
from shiptrack.eta.speed import Motion
from shiptrack.eta.trips import Trip

FETCH = 5_000  # rows per round trip of the server-side cursor


@dataclass(frozen=True, slots=True)
class Span:
    """A finished trip: a delivered shipment's in-transit span on its device."""

    shipment_id: str
    start: float
    end: float
    route: Route | None


@dataclass(slots=True)
class Summary:
    devices: int = 0
    positions: int = 0
    trips: int = 0  # finished trips replayed (detour, duration, calibration)


def learn(conn: psycopg.Connection[Any], since: datetime | None = None
          ) -> tuple[History, Summary]:
    """Learn a ``History`` from the database on ``conn`` (positions since ``since``)."""
    spans = _spans(conn, since)
    with conn.transaction(), conn.cursor(name="shiptrack_eta_learn") as cur:
        cur.itersize = FETCH
        cur.execute(POSITIONS, {"since": since})
        return learn_rows(((str(d), ts.timestamp(), float(lat), float(lon))
                           for d, ts, lat, lon in cur), spans)


def learn_rows(rows: Iterable[tuple[str, float, float, float]],
               spans: dict[str, list[Span]]) -> tuple[History, Summary]:
    """The learning itself, from ``(device_id, epoch s, lat, lon)`` rows ordered by
    device then time, and each device's finished trips ordered by start."""
    replay = Replay()
    summary = Summary()
    device: str | None = None
    queue: Iterator[Span] = iter(())
    span: Span | None = None
    nxt: Span | None = None
    trip: list[tuple[float, float, float]] = []

    def close() -> None:
        """Replay the trip under way (or, with under two fixes, learn them as steps)."""
        nonlocal span
        if span is not None and device is not None:
            if len(trip) >= 2:
                replay.run([Trip(span.shipment_id, [p[0] for p in trip],
                                 [p[1] for p in trip], [p[2] for p in trip], span.route,
                                 device)])
                replay.learn_all()
                summary.trips += 1
            else:
                for t, lat, lon in trip:
                    _step(replay, device, t, lat, lon)
        span = None
        trip.clear()

    for dev, t, lat, lon in rows:
        if dev != device:
            close()
            if device is not None:
                replay.motions.pop(device, None)
            device, queue = dev, iter(spans.get(dev, ()))
            nxt = next(queue, None)
            summary.devices += 1
        summary.positions += 1
        if span is not None and t > span.end:
            close()
        if span is None:
            while nxt is not None and nxt.end < t:
                nxt = next(queue, None)  # ended before this fix: no fixes of it left
            if nxt is not None and nxt.start <= t:
                span, nxt = nxt, next(queue, None)
                while nxt is not None and nxt.start <= span.end:
                    nxt = next(queue, None)  # overlaps the trip under way
        if span is not None:
            trip.append((t, lat, lon))
        else:
            _step(replay, dev, t, lat, lon)
    close()
    history = replay.history
    if history.learner.trips > history.learner.fitted_at:
        history.refit()  # the correction from every trip (refitted on the way, too)
    return history, summary


def _step(replay: Replay, device: str, t: float, lat: float, lon: float) -> None:
    """A fix outside any finished trip: its step feeds the profile and the rest model."""
    motion = replay.motions.setdefault(device, Motion())
    step = replay.estimator.observe_at(motion, t, lat, lon)
    if step is not None:
        replay.history.learn_step(step)


def _spans(conn: psycopg.Connection[Any], since: datetime | None) -> dict[str, list[Span]]:
    spans: dict[str, list[Span]] = {}
    with conn.cursor() as cur:
        cur.execute(SPANS, {"since": since})
        for sid, device, started, delivered, route in cur:
            if delivered is None or delivered <= started:
                continue
            spans.setdefault(device, []).append(
                Span(sid, started.timestamp(), delivered.timestamp(), _route(route)))
    return spans


def _route(obj: Any) -> Route | None:
    if obj is None:
        return None
    try:
        return Route.from_geojson(obj)
    except RouteError:
        return None


def save(history: History, path: Path) -> None:
    """Write ``history`` to ``path`` atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        history.save(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
