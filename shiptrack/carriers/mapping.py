"""The one table from carriers' and aggregators' words to ours (SPEC "Shipment statuses").

Each provider value has a ``Meaning``: the status it moves the shipment to (``None``: it
stays) and the exception code it raises (``None``: none). A checkpoint with a status and
no code also clears the shipment's open carrier exception (the parcel moves on); one with
neither is informational (kept in the carrier's timeline, nothing else). Statuses move
only along ``shiptrack.shipments.TRANSITIONS``, so a meaning that is not an allowed move
records nothing.

- AfterShip: the subtag's meaning, else its tag's (``AFTERSHIP_SUBTAGS`` /
  ``AFTERSHIP_TAGS``).
- EasyPost: the status's meaning; a ``status_detail`` with a code of its own replaces the
  status's code (``EASYPOST_STATUSES`` / ``EASYPOST_DETAILS``).
- karrio: the normalised tracking status's meaning; an incident reason's code replaces it
  (``KARRIO_STATUSES`` / ``KARRIO_REASONS``).

docs/CARRIERS.md holds these tables as ``markdown()`` renders them (a test compares).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Meaning:
    status: str | None = None
    code: str | None = None
    words: str = ""  # what the provider calls it (for the documentation)


def M(status: str | None, code: str | None, words: str) -> Meaning:
    return Meaning(status, code, words)


NOTHING = Meaning()

AFTERSHIP_TAGS: dict[str, Meaning] = {
    "Pending": M(None, None, "new, no information yet"),
    "InfoReceived": M(None, None, "carrier has the shipper's information"),
    "InTransit": M("in_transit", None, "on the way"),
    "OutForDelivery": M("out_for_delivery", None, "out for delivery"),
    "AttemptFail": M("attempt_failed", None, "delivery attempt failed"),
    "Delivered": M("delivered", None, "delivered"),
    "AvailableForPickup": M("available_for_pickup", None, "at a pickup point"),
    "Exception": M(None, "other", "exception"),
    "Expired": M(None, "other", "no tracking information for a long time"),
}

AFTERSHIP_SUBTAGS: dict[str, Meaning] = {
    "Pending_001": M(None, None, "no information yet"),
    "InfoReceived_001": M(None, None, "info received"),
    "InTransit_001": M("in_transit", None, "in transit"),
    "InTransit_002": M("picked_up", None, "acceptance scan"),
    "InTransit_003": M("in_transit", None, "arrival scan"),
    "InTransit_004": M("in_transit", None, "arrived at the destination country"),
    "InTransit_005": M("in_transit", None, "customs clearance completed"),
    "InTransit_006": M("in_transit", None, "customs clearance started"),
    "InTransit_007": M("in_transit", None, "departure scan"),
    "InTransit_008": M("in_transit", None, "problem resolved"),
    "InTransit_009": M("in_transit", None, "forwarded to a different delivery address"),
    "OutForDelivery_001": M("out_for_delivery", None, "out for delivery"),
    "OutForDelivery_003": M("out_for_delivery", None, "customer contacted"),
    "OutForDelivery_004": M("out_for_delivery", None, "delivery appointment scheduled"),
    "AttemptFail_001": M("attempt_failed", None, "failed attempt"),
    "AttemptFail_002": M("attempt_failed", None, "addressee not available"),
    "AttemptFail_003": M("attempt_failed", None, "business closed"),
    "Delivered_001": M("delivered", None, "delivered"),
    "Delivered_002": M("delivered", None, "picked up by the customer"),
    "Delivered_003": M("delivered", None, "signed by the customer"),
    "Delivered_004": M("delivered", None, "delivered, cash on delivery received"),
    "Delivered_005": M("delivered", None, "delivered to a neighbour"),
    "AvailableForPickup_001": M("available_for_pickup", None, "available for pickup"),
    "Exception_001": M(None, "other", "exception"),
    "Exception_002": M(None, "address_issue", "customer moved"),
    "Exception_003": M(None, "refused", "customer refused delivery"),
    "Exception_004": M(None, "customs_hold", "delayed (customs clearance)"),
    "Exception_005": M(None, "delayed", "delayed (external factors)"),
    "Exception_006": M(None, "other", "held for payment"),
    "Exception_007": M(None, "address_issue", "incorrect address"),
    "Exception_008": M(None, "other", "pick up missed"),
    "Exception_009": M(None, "other", "rejected by carrier"),
    "Exception_010": M("returned_to_sender", None, "returning to sender"),
    "Exception_011": M("returned_to_sender", None, "returned to sender"),
    "Exception_012": M(None, "damaged", "shipment damaged"),
    "Exception_013": M(None, "lost", "shipment lost"),
    "Expired_001": M(None, "other", "expired"),
}

EASYPOST_STATUSES: dict[str, Meaning] = {
    "unknown": M(None, None, "unknown"),
    "pre_transit": M(None, None, "label created, not yet with the carrier"),
    "in_transit": M("in_transit", None, "in transit"),
    "out_for_delivery": M("out_for_delivery", None, "out for delivery"),
    "delivered": M("delivered", None, "delivered"),
    "available_for_pickup": M("available_for_pickup", None, "available for pickup"),
    "return_to_sender": M("returned_to_sender", None, "returned to sender"),
    "failure": M("attempt_failed", "other", "delivery failed"),
    "cancelled": M("cancelled", None, "cancelled"),
    "error": M(None, "other", "error"),
}

# status_detail values that carry an exception code of their own (others keep the status's)
EASYPOST_DETAILS: dict[str, Meaning] = {
    "address_correction": M(None, "address_issue", "address correction"),
    "damaged": M(None, "damaged", "damaged"),
    "delayed": M(None, "delayed", "delayed"),
    "delivery_exception": M(None, "other", "delivery exception"),
    "held": M(None, "other", "held"),
    "lost": M(None, "lost", "lost"),
    "missorted": M(None, "delayed", "missorted"),
    "refused": M(None, "refused", "refused"),
    "transit_exception": M(None, "other", "transit exception"),
    "weather_delay": M(None, "weather", "weather delay"),
    "customs_hold": M(None, "customs_hold", "held in customs"),
}

KARRIO_STATUSES: dict[str, Meaning] = {
    "pending": M(None, None, "pending"),
    "picked_up": M("picked_up", None, "picked up"),
    "on_hold": M(None, "other", "on hold"),
    "cancelled": M("cancelled", None, "cancelled"),
    "delivered": M("delivered", None, "delivered"),
    "in_transit": M("in_transit", None, "in transit"),
    "delivery_failed": M("attempt_failed", None, "delivery failed"),
    "delivery_delayed": M(None, "delayed", "delivery delayed"),
    "out_for_delivery": M("out_for_delivery", None, "out for delivery"),
    "ready_for_pickup": M("available_for_pickup", None, "ready for pickup"),
    "return_to_sender": M("returned_to_sender", None, "return to sender"),
    "unknown": M(None, None, "unknown"),
}


def _reasons(code: str, *names: str) -> dict[str, Meaning]:
    return {n: M(None, code, n.replace("_", " ")) for n in names}


KARRIO_REASONS: dict[str, Meaning] = {
    **_reasons("damaged", "carrier_damaged_parcel"),
    **_reasons("lost", "carrier_parcel_lost"),
    **_reasons("address_issue", "carrier_address_not_found", "retailer_incorrect_data",
               "consignee_incorrect_address", "consignee_access_restricted"),
    **_reasons("delayed", "carrier_sorting_error", "carrier_not_enough_time",
               "carrier_vehicle_issue", "carrier_capacity_exceeded",
               "carrier_mechanical_delay", "retailer_not_ready"),
    **_reasons("refused", "consignee_refused", "consignee_cancelled"),
    **_reasons("customs_hold", "customs_delay", "customs_documentation",
               "customs_duties_unpaid", "customs_prohibited", "customs_inspection",
               "regulatory_hold"),
    **_reasons("weather", "weather_delay", "natural_disaster"),
    **_reasons("other", "retailer_cancelled", "retailer_incorrect_parcel",
               "retailer_incorrect_dimensions", "retailer_packaging_issue",
               "consignee_business_closed", "consignee_not_available", "consignee_not_home",
               "consignee_verification_failed", "consignee_safe_place_unavailable",
               "force_majeure", "parcel_being_researched", "security_issue", "unknown"),
}


def _refine(base: Meaning, detail: Meaning | None) -> Meaning:
    if detail is None or detail.code is None:
        return base
    return Meaning(detail.status or base.status, detail.code, base.words)


def aftership(tag: str | None, subtag: str | None) -> Meaning:
    found = AFTERSHIP_SUBTAGS.get(subtag or "")
    return found if found is not None else AFTERSHIP_TAGS.get(tag or "", NOTHING)


def easypost(status: str | None, detail: str | None) -> Meaning:
    return _refine(EASYPOST_STATUSES.get(status or "", NOTHING), EASYPOST_DETAILS.get(detail or ""))


def karrio(status: str | None, reason: str | None) -> Meaning:
    return _refine(KARRIO_STATUSES.get(status or "", NOTHING), KARRIO_REASONS.get(reason or ""))


TABLES: tuple[tuple[str, dict[str, Meaning]], ...] = (
    ("AfterShip tag", AFTERSHIP_TAGS), ("AfterShip subtag", AFTERSHIP_SUBTAGS),
    ("EasyPost status", EASYPOST_STATUSES), ("EasyPost status_detail", EASYPOST_DETAILS),
    ("karrio tracking status", KARRIO_STATUSES), ("karrio incident reason", KARRIO_REASONS),
)


def markdown() -> str:
    """The tables as docs/CARRIERS.md shows them."""
    out: list[str] = []
    for title, table in TABLES:
        out += [f"#### {title}", "", f"| {title} | meaning | our status | exception_code |",
                "| --- | --- | --- | --- |"]
        out += [f"| `{k}` | {m.words} | {m.status or '-'} | {m.code or '-'} |"
                for k, m in table.items()]
        out.append("")
    return "\n".join(out)
