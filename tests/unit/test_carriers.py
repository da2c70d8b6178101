"""Carrier updates, pure: every row of the mapping table through the providers' own
formats, signatures, times, and the polling policy."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from karrio.core.units import TrackingIncidentReason, TrackingStatus

from shiptrack.carriers import mapping
from shiptrack.carriers.mapping import Meaning
from shiptrack.carriers.polling import (
    RateLimiter,
    accounts,
    backoff_s,
    from_karrio,
    interval_s,
)
from shiptrack.carriers.updates import (
    UpdateError,
    aftership,
    easypost,
    parse_time,
    sign_aftership,
    sign_easypost,
    signature_ok,
)
from shiptrack.shipments import EXCEPTION_CODES, STATUSES

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests/fixtures/carriers"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def test_table_values_are_ours() -> None:
    for _, table in mapping.TABLES:
        for meaning in table.values():
            assert meaning.status is None or meaning.status in STATUSES
            assert meaning.code is None or meaning.code in EXCEPTION_CODES
            assert meaning.words


def test_karrio_table_covers_karrio() -> None:
    """Every normalised tracking status and incident reason of the installed karrio."""
    assert set(mapping.KARRIO_STATUSES) == {s.name for s in TrackingStatus}
    assert set(mapping.KARRIO_REASONS) == {r.name for r in TrackingIncidentReason}


def test_every_aftership_row_through_a_webhook() -> None:
    hook = fixture("aftership_tracking_update.json")
    template = hook["msg"]["checkpoints"][0]
    rows: list[tuple[str, str | None, Meaning]] = [
        (tag, None, m) for tag, m in mapping.AFTERSHIP_TAGS.items()]
    rows += [(sub.split("_")[0], sub, m) for sub, m in mapping.AFTERSHIP_SUBTAGS.items()]
    hook["msg"]["checkpoints"] = [
        {**template, "tag": tag, "subtag": sub, "message": f"row {i}",
         "checkpoint_time": f"2026-11-2{i % 7}T10:{i % 60:02d}:00+01:00"}
        for i, (tag, sub, _) in enumerate(rows)]
    update = aftership(hook, NOW)
    assert [c.meaning for c in update.checkpoints] == [m for _, _, m in rows]
    assert aftership({**hook, "msg": {**hook["msg"], "checkpoints": [
        {**template, "tag": "InTransit", "subtag": "InTransit_999"}]}},
        NOW).checkpoints[0].meaning == mapping.AFTERSHIP_TAGS["InTransit"]  # tag fallback


def test_every_easypost_row_through_an_event() -> None:
    event = fixture("easypost_tracker_updated.json")
    template = event["result"]["tracking_details"][0]
    rows: list[tuple[str, str | None, Meaning]] = [
        (status, None, m) for status, m in mapping.EASYPOST_STATUSES.items()]
    rows += [("in_transit", detail, Meaning("in_transit", m.code, "in transit"))
             for detail, m in mapping.EASYPOST_DETAILS.items()]
    event["result"]["tracking_details"] = [
        {**template, "status": status, "status_detail": detail, "message": f"row {i}",
         "datetime": f"2026-11-2{i % 7}T10:{i % 60:02d}:00Z"}
        for i, (status, detail, _) in enumerate(rows)]
    update = easypost(event, NOW)
    assert [(c.meaning.status, c.meaning.code) for c in update.checkpoints] == [
        (m.status, m.code) for _, _, m in rows]
    # a detail without a code of its own keeps the status's meaning
    assert mapping.easypost("failure", "arrived_at_facility") == mapping.EASYPOST_STATUSES[
        "failure"]


def test_every_karrio_row_through_tracking_details() -> None:
    rows: list[tuple[str, str | None, Meaning]] = [
        (status, None, m) for status, m in mapping.KARRIO_STATUSES.items()]
    rows += [("on_hold", reason, Meaning(None, m.code, "on hold"))
             for reason, m in mapping.KARRIO_REASONS.items()]
    details = {"tracking_number": "1Z999", "carrier_name": "ups", "events": [
        {"date": "2026-11-26", "time": "10:00", "timestamp": f"2026-11-26T10:{i % 60:02d}:00Z",
         "status": status, "reason": reason, "description": f"row {i}", "code": "X"}
        for i, (status, reason, _) in enumerate(rows)]}
    update = from_karrio(details, "ups", NOW)
    assert [(c.meaning.status, c.meaning.code) for c in update.checkpoints] == [
        (m.status, m.code) for _, _, m in rows]
    assert update.provider == "karrio:ups"


def test_easypost_fixture() -> None:
    update = easypost(fixture("easypost_tracker_updated.json"), NOW)
    assert (update.provider, update.tracking_number, update.carrier) == (
        "easypost", "EZ4000000004", "USPS")
    assert update.eta == datetime(2026, 11, 27, 18, tzinfo=UTC)
    assert [(c.status, c.detail, c.meaning.status) for c in update.checkpoints] == [
        ("pre_transit", "label_created", None),
        ("in_transit", "arrived_at_facility", "in_transit"),
        ("in_transit", "departed_facility", "in_transit"),
        ("out_for_delivery", "out_for_delivery", "out_for_delivery")]
    assert update.checkpoints[1].location == "NORTH HOUSTON, TX, US"
    assert len({c.key for c in update.checkpoints}) == 4
    assert easypost(fixture("easypost_tracker_updated.json"), NOW).checkpoints == \
        update.checkpoints  # the same payload, the same keys
    other = {**fixture("easypost_tracker_updated.json"), "description": "batch.created"}
    assert easypost(other, NOW).ignored


def test_aftership_fixture() -> None:
    update = aftership(fixture("aftership_tracking_update.json"), NOW)
    assert (update.tracking_number, update.carrier) == ("JD014600006281230702", "dhl")
    assert update.eta == datetime(2026, 12, 2, 12, tzinfo=UTC)  # a date: noon UTC
    assert [c.ts for c in update.checkpoints] == [
        datetime(2026, 11, 24, 2, 55, tzinfo=UTC), datetime(2026, 11, 24, 20, 31, tzinfo=UTC),
        datetime(2026, 11, 27, 6, 2, tzinfo=UTC)]
    assert [(c.meaning.status, c.meaning.code) for c in update.checkpoints] == [
        ("picked_up", None), ("in_transit", None), (None, "customs_hold")]


@pytest.mark.parametrize("payload, message", [
    ([], "must be a JSON object"), ({"result": None}, r"result \(the Tracker\)"),
    ({"result": {"status": "delivered"}}, "tracking_code is required"),
])
def test_easypost_bad_input(payload: Any, message: str) -> None:
    with pytest.raises(UpdateError, match=message):
        easypost(payload, NOW)


def test_aftership_bad_input() -> None:
    with pytest.raises(UpdateError, match="msg"):
        aftership({"event": "tracking_update"}, NOW)
    with pytest.raises(UpdateError, match="tracking_number"):
        aftership({"event": "tracking_update", "msg": {"checkpoints": []}}, NOW)
    hook = fixture("aftership_tracking_update.json")
    assert aftership({**hook, "event": "tracking_pending_time"}, NOW).ignored


def test_times() -> None:
    assert parse_time("2026-11-27T07:02:00+01:00") == datetime(2026, 11, 27, 6, 2, tzinfo=UTC)
    assert parse_time("2026-11-27T07:02:00") == datetime(2026, 11, 27, 7, 2, tzinfo=UTC)
    assert parse_time("2026-11-27") == datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert parse_time("yesterday") is None and parse_time(None) is None
    hook = fixture("aftership_tracking_update.json")
    hook["msg"]["checkpoints"][0]["checkpoint_time"] = "2027-01-01T00:00:00Z"
    assert aftership(hook, NOW).checkpoints[0].ts == NOW  # never in the future


def test_signatures() -> None:
    body = b'{"a": 1}'
    # known answers: HMAC-SHA256 keyed "s3cret" of the body, hex and base64
    easy = sign_easypost("s3cret", body)
    assert easy == ("hmac-sha256-hex="
                    "1a9fab6cd4b8cdcaad8640f3eca73fa924c62ff24f3833254ef3547232153767")
    assert sign_aftership("s3cret", body) == "Gp+rbNS4zcqthkDz7Kc/qSTGL/JPODMlTvNUcjIVN2c="
    assert signature_ok("easypost", "s3cret", {"x-hmac-signature": easy}, body)
    assert not signature_ok("easypost", "s3cret", {"x-hmac-signature": easy}, body + b" ")
    assert not signature_ok("easypost", "other", {"x-hmac-signature": easy}, body)
    assert not signature_ok("easypost", "s3cret", {}, body)
    after = sign_aftership("s3cret", body)
    assert signature_ok("aftership", "s3cret", {"aftership-hmac-sha256": after}, body)
    assert not signature_ok("aftership", "s3cret", {"aftership-hmac-sha256": easy}, body)


def test_poll_policy() -> None:
    assert interval_s("created", 1800) == 7200
    assert interval_s("in_transit", 1800) == 1800
    assert interval_s("out_for_delivery", 1800) == interval_s("attempt_failed", 1800) == 900
    assert [backoff_s(n) for n in (1, 2, 3, 10, 100)] == [60, 120, 240, 21600, 21600]
    clock = [0.0]
    bucket = RateLimiter(60, clock=lambda: clock[0])  # 1/s, bursts of 6
    assert [bucket.take() for _ in range(6)] == [0.0] * 6
    assert bucket.take() == pytest.approx(1.0)
    clock[0] = 2.0
    assert bucket.take() == 0.0 and bucket.take() == 0.0 and bucket.take() > 0
    bucket.failed()
    assert bucket.take() == pytest.approx(60.0)
    bucket.failed()
    assert bucket.take() == pytest.approx(120.0)
    bucket.succeeded()
    clock[0] = 100.0
    assert bucket.take() == 0.0


def test_accounts() -> None:
    found = accounts({"dhl": {"connector": "dhl_universal", "consumer_key": "k",
                              "consumer_secret": "s", "requests_per_minute": 10}})
    assert found["dhl"].credentials == {"consumer_key": "k", "consumer_secret": "s"}
    assert found["dhl"].per_minute == 10
    bads: list[dict[str, dict[str, object]]] = [
        {"dhl": {}}, {"dhl": {"connector": "x", "requests_per_minute": -1}}]
    for bad in bads:
        with pytest.raises(ValueError):
            accounts(copy.deepcopy(bad))


def test_the_table_in_the_docs_is_the_data() -> None:
    doc = (ROOT / "docs/CARRIERS.md").read_text()
    assert mapping.markdown() in doc
