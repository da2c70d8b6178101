"""The status model: transitions as data, one list of statuses and codes everywhere, the
diagram in the docs drawn from the data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from api.tracking_schemas import ExceptionCode, Status
from shiptrack.shipments import (
    EXCEPTION_CODES,
    FINAL,
    HUB,
    STATUSES,
    TRANSITIONS,
    can_move,
    detector_code,
    preceding,
    transitions_mermaid,
)

ROOT = Path(__file__).resolve().parents[2]


def test_transitions() -> None:
    assert set(TRANSITIONS) == set(STATUSES)
    for final in FINAL:
        assert TRANSITIONS[final] == frozenset()
    chain = ["created", "picked_up", "in_transit", "out_for_delivery", "delivered"]
    for i, a in enumerate(chain):
        for b in chain[i + 1:]:
            assert can_move(a, b) and not can_move(b, a)
    for door in ("attempt_failed", "available_for_pickup"):  # both may go back out
        assert can_move("out_for_delivery", door) and can_move(door, "out_for_delivery")
        assert not can_move(door, "in_transit") and not can_move(door, door)
    assert can_move("attempt_failed", "available_for_pickup")
    assert not can_move("available_for_pickup", "attempt_failed")
    for status in set(STATUSES) - FINAL:
        assert (can_move(status, "cancelled") and can_move(status, "returned_to_sender")) \
            or (status == "created" and can_move(status, "cancelled"))
    assert preceding("created") == []
    assert preceding(HUB) == [s for s in STATUSES if s not in FINAL]
    assert set(preceding("out_for_delivery")) == {"created", "picked_up", "in_transit",
                                                  "attempt_failed", "available_for_pickup"}


def test_one_list_everywhere() -> None:
    assert get_args(Status) == STATUSES
    assert get_args(ExceptionCode) == EXCEPTION_CODES
    sql = (ROOT / "shiptrack/db/migrations/0010_statuses.sql").read_text()
    check = re.search(r"CHECK \(status IN \(([^)]*)\)\)", sql)
    assert check is not None
    assert tuple(re.findall(r"'([a-z_]+)'", check.group(1))) == STATUSES
    final = re.search(r"WHERE status NOT IN \(([^)]*)\)", sql)
    assert final is not None and set(re.findall(r"'([a-z_]+)'", final.group(1))) == FINAL


def test_detector_codes() -> None:
    assert detector_code("device.offline") == "offline"
    assert detector_code("sensor.excursion:temperature_c") == "sensor_excursion"
    assert detector_code("route.deviation") == "route_deviation"
    assert detector_code("device.long_stop") == "long_stop"
    assert detector_code("eta.at_risk") == "delayed"
    assert detector_code("manual") == "other"


def test_the_diagram_in_the_docs_is_the_data() -> None:
    doc = (ROOT / "docs/CARRIERS.md").read_text()
    assert f"```mermaid\n{transitions_mermaid()}\n```" in doc
    edges = transitions_mermaid().count("-->")
    assert edges == sum(len(v) for v in TRANSITIONS.values()) + 1 + len(FINAL)
