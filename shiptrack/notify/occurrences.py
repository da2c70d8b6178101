"""Which events a consignee hears of: an event of the log becomes an occurrence (pure).

- ``shipment.milestone``: its ``data.kind`` when that is a status (a hub scan is not).
- ``shipment.at_risk``: ``delayed``, once per at-risk episode (the event itself is made
  once when the flag turns on; ``shipment.at_risk_cleared`` ends the episode).
- ``shipment.exception``: ``exception`` when its ``data.code`` is customer-facing
  (``CUSTOMER_FACING``); a manual exception without a code is ``other``. Internal
  detections (offline, sensor excursion, route deviation, long stop) and ``delayed``
  (already told by ``shipment.at_risk``) are not.
- ``shipment.eta_changed``: ``eta_changed`` when the ETA moved at least the threshold
  from the one last told to that subscriber (``eta_news``).

The occurrence key is the event id: event ids are derived from what happened, so the
same occurrence seen twice has the same key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shiptrack.shipments import EXCEPTION_CODES, STATUSES

KINDS = (*STATUSES, "delayed", "exception", "eta_changed")
DEFAULT_NOTIFY = ("picked_up", "out_for_delivery", "delivered", "delayed", "exception",
                  "attempt_failed", "available_for_pickup")
CUSTOMER_FACING = frozenset(("lost", "damaged", "address_issue", "refused", "customs_hold",
                             "weather", "other"))
INTERNAL = frozenset(EXCEPTION_CODES) - CUSTOMER_FACING  # the dispatcher's; delayed: at_risk
WATCHED_TYPES = ("shipment.milestone", "shipment.at_risk", "shipment.exception",
                 "shipment.eta_changed")


@dataclass(frozen=True, slots=True)
class Occurrence:
    kind: str  # one of KINDS
    code: str | None = None  # the exception code (kind "exception")


def occurrence(event_type: str, data: dict[str, Any]) -> Occurrence | None:
    """What a consignee may hear of this event (``eta_changed`` still needs ``eta_news``)."""
    if event_type == "shipment.milestone":
        kind = data.get("kind")
        return Occurrence(kind) if kind in STATUSES else None
    if event_type == "shipment.at_risk":
        return Occurrence("delayed")
    if event_type == "shipment.exception":
        code = data.get("code")
        if code is None and data.get("kind") == "manual":
            code = "other"
        return Occurrence("exception", code) if code in CUSTOMER_FACING else None
    if event_type == "shipment.eta_changed" and data.get("eta"):
        return Occurrence("eta_changed")
    return None


def eta_news(told: datetime | None, eta: datetime, threshold: timedelta) -> bool:
    """Whether a new ETA is worth a message: one was told and it moved at least
    ``threshold`` (the first ETA is the baseline, not news)."""
    return told is not None and abs(eta - told) >= threshold
