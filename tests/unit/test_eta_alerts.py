"""When an ETA is news: eta_changed against the last announced ETA, at_risk transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shiptrack.eta.alerts import (
    AT_RISK,
    AT_RISK_CLEARED,
    at_risk_change,
    eta_changed,
    eta_fields,
    is_at_risk,
)
from shiptrack.eta.model import EtaResult

T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)
TEN = timedelta(minutes=10)


def result(eta_min: float, high_min: float | None = None) -> EtaResult:
    eta = T0 + timedelta(minutes=eta_min)
    high = T0 + timedelta(minutes=high_min if high_min is not None else eta_min + 30)
    return EtaResult(eta, eta - timedelta(minutes=20), high, 12_345.67, 60.0 * eta_min,
                     "moving")


def test_eta_changed_only_past_the_threshold_from_the_one_announced() -> None:
    assert eta_changed(None, T0, TEN)
    assert not eta_changed(T0, T0 + timedelta(minutes=9), TEN)
    assert not eta_changed(T0, T0 + TEN, TEN)
    assert eta_changed(T0, T0 + timedelta(minutes=10, seconds=1), TEN)
    assert eta_changed(T0, T0 - timedelta(minutes=11), TEN)
    # a slow drift: compared with the announced ETA, it adds up and is announced once
    announced, announcements = T0, 0
    for minute in range(1, 31):
        eta = T0 + timedelta(minutes=minute)
        if eta_changed(announced, eta, TEN):
            announced, announcements = eta, announcements + 1
    assert announcements == 2  # at +11 and at +22 minutes


def test_at_risk_events_once_when_it_becomes_true_and_once_when_it_clears() -> None:
    promised = T0 + timedelta(minutes=120)
    highs = [60, 100, 121, 130, 125, 119, 110, 140, 140]
    was, events = False, []
    for high in highs:
        now = is_at_risk(result(high - 30, high), promised)
        event = at_risk_change(was, now)
        if event:
            events.append(event)
        was = now
    assert events == [AT_RISK, AT_RISK_CLEARED, AT_RISK]


def test_at_risk_basis_and_no_promise() -> None:
    promised = T0 + timedelta(minutes=120)
    late_high_only = result(100, 130)
    assert is_at_risk(late_high_only, promised)
    assert is_at_risk(late_high_only, promised, "eta_high")
    assert not is_at_risk(late_high_only, promised, "eta")
    assert is_at_risk(result(121), promised, "eta")
    assert not is_at_risk(result(500), None)
    assert at_risk_change(True, True) is None and at_risk_change(False, False) is None


def test_eta_fields_are_the_spec_names_as_json() -> None:
    assert eta_fields(result(90)) == {
        "eta": "2026-11-26T11:30:00Z", "eta_low": "2026-11-26T11:10:00Z",
        "eta_high": "2026-11-26T12:00:00Z", "remaining_m": 12345.7}
