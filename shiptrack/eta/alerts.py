"""When an ETA is news: ``shipment.eta_changed`` and ``shipment.at_risk`` decisions, pure.

- ``eta_changed``: compare with the ETA last *announced* (not the last computed), so a
  slow drift is announced once it adds up to more than the threshold, and jitter never is.
- ``late_probability``: the chance of arriving after ``promised_by``, from the
  estimate's distribution of the time left (``outlook.Outlook``: a break that may or may
  not come weighs in by its chance).
- ``is_at_risk``: by ``late_probability`` (at least a threshold: the service's default,
  SHIPTRACK_AT_RISK_PROBABILITY 0.5), or the arrival, by ``eta_high`` (the pessimistic end
  of the 80 % interval) or by ``eta``, is later than ``promised_by``.
- ``at_risk_change``: the event a change of that flag makes: ``shipment.at_risk`` once
  when it becomes true, ``shipment.at_risk_cleared`` once when it stops being true,
  nothing while it stays as it was.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from shiptrack.eta.model import EtaResult

ETA_CHANGED = "shipment.eta_changed"
AT_RISK = "shipment.at_risk"
AT_RISK_CLEARED = "shipment.at_risk_cleared"

AtRiskBasis = Literal["late_probability", "eta_high", "eta"]


def eta_changed(announced: datetime | None, eta: datetime, threshold: timedelta) -> bool:
    """Whether ``eta`` is to be announced: none was yet, or it moved more than
    ``threshold`` from the one last announced."""
    return announced is None or abs(eta - announced) > threshold


def late_probability(result: EtaResult, promised_by: datetime | None, at: datetime
                     ) -> float | None:
    """The chance (0..1, 3 decimals) of arriving after ``promised_by``, for an estimate
    made at ``at``; None without a promise."""
    if promised_by is None:
        return None
    left = (promised_by - at).total_seconds()
    if result.outlook is None:  # no distribution: all or nothing by the ETA
        return 1.0 if result.eta > promised_by else 0.0
    return round(min(1.0, max(0.0, result.outlook.late_probability(left))), 3)


def is_at_risk(result: EtaResult, promised_by: datetime | None,
               basis: AtRiskBasis = "eta_high", probability: float | None = None,
               threshold: float = 0.5) -> bool:
    """Whether the arrival (by ``basis``) passes ``promised_by``; never without one. By
    ``late_probability``: whether ``probability`` reaches ``threshold``."""
    if promised_by is None:
        return False
    if basis == "late_probability":
        return probability is not None and probability >= threshold
    arrival = result.eta_high if basis == "eta_high" else result.eta
    return arrival > promised_by


def at_risk_change(was: bool, now: bool) -> str | None:
    """The event type a change of the at-risk flag makes, or None."""
    if now and not was:
        return AT_RISK
    if was and not now:
        return AT_RISK_CLEARED
    return None


def eta_fields(result: EtaResult) -> dict[str, Any]:
    """The shipment's ETA fields (SPEC: ``eta``, ``eta_low``, ``eta_high``,
    ``remaining_m``) as JSON values, for the shipment row, events and ``eta`` messages."""
    return {"eta": _iso(result.eta), "eta_low": _iso(result.eta_low),
            "eta_high": _iso(result.eta_high), "remaining_m": round(result.remaining_m, 1)}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
