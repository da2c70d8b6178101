"""ETA and delay prediction: pure, deterministic, cheap per fix, measured by ``eta-eval``.

The public surface, for ingest (docs/DESIGN.md "ETA" has the why)::

    from shiptrack.eta import EtaEstimator, History, Motion, Progress, Route

    estimator = EtaEstimator(History.load(path))       # or History(): defaults
    plan = estimator.plan((dest_lat, dest_lon), Route.from_geojson(route) if route else None)
    estimator.observe(motion, fix)                      # per new fix, per device
    result = estimator.estimate(plan, progress, motion, fix)   # per active shipment
    # result.eta, result.eta_low, result.eta_high (datetimes), result.remaining_m
    if eta_changed(announced_eta, result.eta, timedelta(minutes=10)): ...
    event = at_risk_change(was_at_risk, is_at_risk(result, promised_by, "eta_high"))

Modules: ``route`` (projection onto a route: loops, going backwards), ``speed`` (recent
moving speed, stops, driving clocks), ``profile`` (speed by H3 cell and hour of week),
``rests`` (breaks and rests over drivers' hours), ``calibration`` (the 80 % interval),
``history`` (all that is learned, as JSON), ``model`` (the estimator), ``alerts``
(eta_changed / at_risk decisions), ``trips`` / ``evaluate`` / ``convert`` / ``cli``
(``shiptrack eta-eval`` and ``eta-convert``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shiptrack.eta.alerts import (
        AT_RISK,
        AT_RISK_CLEARED,
        ETA_CHANGED,
        AtRiskBasis,
        at_risk_change,
        eta_changed,
        eta_fields,
        is_at_risk,
    )
    from shiptrack.eta.history import History
    from shiptrack.eta.model import EtaConfig, EtaEstimator, EtaResult, EtaState, Plan, Progress
    from shiptrack.eta.route import Route, RouteError
    from shiptrack.eta.speed import Motion

_HOMES = {
    "AT_RISK": "alerts", "AT_RISK_CLEARED": "alerts", "ETA_CHANGED": "alerts",
    "AtRiskBasis": "alerts", "at_risk_change": "alerts", "eta_changed": "alerts",
    "eta_fields": "alerts", "is_at_risk": "alerts", "History": "history",
    "EtaConfig": "model", "EtaEstimator": "model", "EtaResult": "model", "EtaState": "model",
    "Plan": "model", "Progress": "model", "Route": "route", "RouteError": "route",
    "Motion": "speed",
}


def __getattr__(name: str) -> Any:
    """Imported on first use: the CLI imports this package for its commands, and numpy
    and h3 should only load when an ETA is actually made."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'shiptrack.eta' has no attribute {name!r}")
    return getattr(importlib.import_module(f"shiptrack.eta.{home}"), name)


__all__ = [
    "AT_RISK",
    "AT_RISK_CLEARED",
    "ETA_CHANGED",
    "AtRiskBasis",
    "EtaConfig",
    "EtaEstimator",
    "EtaResult",
    "EtaState",
    "History",
    "Motion",
    "Plan",
    "Progress",
    "Route",
    "RouteError",
    "at_risk_change",
    "eta_changed",
    "eta_fields",
    "is_at_risk",
]
