"""Scans from barcode/RFID readers (SPEC): ``shiptrack/v1/scanners/{scanner_id}/scan`` with
``{"ts", "shipment_ref", "lat"?, "lon"?, "kind": "pickup|hub|delivery"}`` (an object or
an array of them). Pure validation, and what a scan does (``scan_action``): the one rule
for both doors (ingest's MQTT topic and ``POST /api/v1/scans``). A scan becomes a
milestone of the shipment whose ``reference`` it names, an unknown reference a dead
letter (``unknown_reference``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from shiptrack.decode import MAX_RAW_KEPT, Invalid, decode_each, load_json, parse_ts
from shiptrack.events import SHIPMENT_EXCEPTION, Event, make_event
from shiptrack.fix import Rejection
from shiptrack.jsontree import as_float, is_number, short
from shiptrack.shipments import FINAL, HUB, RANK, SCAN, SCAN_EXCEPTIONS, SCAN_KINDS

MAX_REF = 200


class Scan(msgspec.Struct, kw_only=True):
    scanner_id: str
    ts: datetime
    shipment_ref: str
    kind: str  # a key of shiptrack.shipments.SCAN_KINDS
    lat: float | None = None
    lon: float | None = None
    topic: str = ""
    payload: bytes = b""


@dataclass(slots=True)
class DecodedScans:
    scans: list[Scan] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)


def _coordinate(obj: dict[str, Any], key: str, bound: float) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if not is_number(value):
        raise Invalid("bad_type", f"{key} must be a number")
    number = as_float(value)
    if not -bound <= number <= bound:
        raise Invalid("out_of_range", f"{key} {short(value)} is outside -{bound:g}..{bound:g}")
    return number


def validate_scan(scanner_id: str, obj: Any, now: datetime) -> Scan:
    if not isinstance(obj, dict):
        raise Invalid("not_object", "each scan must be a JSON object")
    if "ts" not in obj:
        raise Invalid("missing_field", "ts is required")
    ts = parse_ts(obj["ts"], now)
    ref = obj.get("shipment_ref")
    if not isinstance(ref, str) or not ref.strip() or len(ref) > MAX_REF:
        raise Invalid("missing_field", f"shipment_ref is required: a string of 1-{MAX_REF}")
    if "\x00" in ref:
        raise Invalid("bad_value", "shipment_ref holds a NUL character")
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in SCAN_KINDS:
        raise Invalid("bad_scan_kind", f"kind must be one of {', '.join(SCAN_KINDS)}")
    lat, lon = _coordinate(obj, "lat", 90.0), _coordinate(obj, "lon", 180.0)
    if (lat is None) != (lon is None):
        raise Invalid("missing_field", "give both lat and lon, or neither")
    return Scan(scanner_id=scanner_id, ts=ts, shipment_ref=ref.strip(), kind=str(kind),
                lat=lat, lon=lon)


@dataclass(frozen=True, slots=True)
class ScanException:
    """What a ``damaged`` or ``lost`` scan raises: an open exception and its event."""

    kind: str  # shipment_exceptions.kind
    code: str
    reason: str
    event: Event


def scan_exception(scan: Scan, shipment_id: str, device_id: str | None,
                   data: dict[str, Any]) -> ScanException:
    code = SCAN_KINDS[scan.kind]
    reason = f"{code} (scan by {scan.scanner_id})"
    event = make_event(SHIPMENT_EXCEPTION, scan.ts, device_id=device_id,
                       shipment_id=shipment_id, discriminator=code + scan.scanner_id,
                       data={"code": code, "reason": reason, "kind": "scan", "source": SCAN,
                             **data})
    return ScanException(f"scan:{code}", code, reason, event)


@dataclass(frozen=True, slots=True)
class ScanAction:
    """What a scan does to the shipment it names, at the shipment's ``status``."""

    data: dict[str, Any]  # the milestones' (and the exception's) data: scanner, place
    milestones: tuple[str, ...] = ()  # the milestone kinds to record, in this order
    exception: ScanException | None = None  # a ``damaged`` or ``lost`` scan
    late: bool = False  # the shipment is final already: the scan changes nothing


def scan_data(scan: Scan) -> dict[str, Any]:
    data: dict[str, Any] = {"scanner_id": scan.scanner_id}
    if scan.lat is not None and scan.lon is not None:
        data.update(lat=scan.lat, lon=scan.lon)
    return data


def scan_action(scan: Scan, shipment_id: str, device_id: str | None,
                status: str) -> ScanAction:
    """``pickup`` -> ``picked_up``, ``hub`` -> a hub milestone (and ``in_transit`` first if
    the shipment was not yet), ``delivery`` -> ``delivered``, ...; ``damaged`` and ``lost``
    raise an exception with that code (status unchanged); nothing once it is final. The
    milestones are still guarded by the allowed transitions where they are recorded."""
    data = scan_data(scan)
    if status in FINAL:
        return ScanAction(data, late=True)
    kind = SCAN_KINDS[scan.kind]
    if kind in SCAN_EXCEPTIONS:
        return ScanAction(data, exception=scan_exception(scan, shipment_id, device_id, data))
    if kind == HUB and RANK[status] < RANK["in_transit"]:
        return ScanAction(data, ("in_transit", HUB))
    return ScanAction(data, (kind,))


def unknown_reference(ref: str) -> str:
    """The detail of the dead letter of a scan naming no shipment."""
    return f"no shipment with reference {ref[:100]!r}"


def decode_scans(scanner_id: str, topic: str, payload: bytes, now: datetime,
                 max_bytes: int) -> DecodedScans:
    """An object or an array of scans; bad input bounded like fixes' (shiptrack.decode)."""
    out = DecodedScans()
    try:
        items = load_json(payload, max_bytes)
    except Invalid as exc:
        out.rejections.append(Rejection(reason=exc.reason, detail=str(exc), topic=topic,
                                        payload=payload[:MAX_RAW_KEPT]))
        return out
    accepted, out.rejections = decode_each(
        items, topic, payload, lambda item: validate_scan(scanner_id, item, now))
    for scan, item in accepted:
        raw = msgspec.json.encode(item) if isinstance(items, list) else payload
        scan.topic, scan.payload = topic, raw[:MAX_RAW_KEPT]
        out.scans.append(scan)
    return out
