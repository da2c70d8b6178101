"""The named SQL's builders (shiptrack/db/queries/): the statements and parameters they
compose, and that they refuse what is not theirs to put in SQL."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from shiptrack import exceptions as exc
from shiptrack.db.queries import events as event_sql
from shiptrack.db.queries import paging
from shiptrack.db.queries import shipments as shipment_sql


def test_every_exception_state_has_its_condition() -> None:
    assert tuple(event_sql.STATE_CONDITIONS) == exc.STATES


def test_shipment_listing_keeps_the_filters_given_in_parameter_order() -> None:
    query, params = shipment_sql.listing(
        before_id="shp_9", equal={"s.status": "in_transit", "s.at_risk": None,
                                  "s.device_id": "truck-1", "s.carrier": None},
        exception=False, exception_code="lost", limit=11)
    assert query.startswith(shipment_sql.SELECT)
    where = query.removeprefix(shipment_sql.SELECT)
    assert where.startswith(" WHERE true AND s.id < %s AND s.status = %s AND s.device_id = %s"
                            " AND NOT EXISTS")
    assert where.endswith("AND x.code = %s) ORDER BY s.id DESC LIMIT %s")
    assert params == ["shp_9", "in_transit", "truck-1", "lost", 11]
    with pytest.raises(ValueError):
        shipment_sql.listing(before_id=None, equal={"s.id; --": 1}, exception=None,
                             exception_code=None, limit=1)


def test_shipment_update_names_its_columns_and_refuses_others() -> None:
    text = shipment_sql.update(["promised_by", "route"]).as_string(None)
    assert text == ('UPDATE shipments SET "promised_by" = %s, "route" = %s, '
                    'updated_at = now() WHERE id = %s')
    for bad in ([], ["status"], ["id = id; --"]):
        with pytest.raises(ValueError):
            shipment_sql.update(bad)


def test_event_listing_orders_and_pages_either_way() -> None:
    types = event_sql.types_clause(["geofence.enter"], [event_sql.type_prefix("shipment_.")])
    query, params = event_sql.listing(
        ascending=True, after_seq=41, filters={"since": "t0", "until": None,
                                               "device_id": "d1", "shipment_id": None,
                                               "geofence_id": None},
        types=types, limit=6)
    assert query == (f"SELECT {event_sql.COLUMNS} FROM events WHERE seq > %s AND ts >= %s"
                     " AND device_id = %s AND (type = ANY(%s) OR type LIKE ANY(%s))"
                     " ORDER BY seq ASC LIMIT %s")
    assert params == [41, "t0", "d1", ["geofence.enter"], [r"shipment\_.%"], 6]
    query, params = event_sql.listing(ascending=False, after_seq=None, filters={},
                                      types=None, limit=3)
    assert query.endswith("FROM events ORDER BY seq DESC LIMIT %s") and params == [3]


def test_exception_listing_ors_the_states() -> None:
    query, params = event_sql.exception_listing(
        states=["open", "resolved"], before_seq=7, equal={"device_id": None,
                                                          "shipment_id": "shp_1"}, limit=4)
    assert (" AND ((res.id IS NULL AND a.event_id IS NULL) OR (res.id IS NOT NULL))"
            " AND e.seq < %(seq)s AND e.shipment_id = %(shipment_id)s"
            " ORDER BY e.seq DESC LIMIT %(limit)s") in query
    assert params == {"limit": 4, "seq": 7, "shipment_id": "shp_1"}


def test_a_page_after_an_id() -> None:
    assert paging.after_id("SELECT id FROM t WHERE true") == (
        "SELECT id FROM t WHERE true AND id > %s ORDER BY id LIMIT %s")


# -- SQL lives in shiptrack/db/ only ---------------------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "ingest", "shiptrack", "simulator")
STATEMENT = re.compile(r"\s*(SELECT|INSERT|UPDATE|DELETE|WITH|COPY)\s+\S")


def sql_literals(source: str) -> list[tuple[int, str]]:
    """The string constants (and f-strings) of a module that begin with a SQL statement
    (docstrings aside): (line, text)."""
    tree = ast.parse(source)
    skip = {id(body[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                          | ast.AsyncFunctionDef)
            and (body := node.body) and isinstance(body[0], ast.Expr)}
    # the pieces of an f-string are judged as the f-string
    skip |= {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
             for v in node.values}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            head = node.values[0] if node.values else None
            text = head.value if isinstance(head, ast.Constant) else ""
        elif isinstance(node, ast.Constant) and id(node) not in skip:
            text = node.value
        else:
            continue
        if isinstance(text, str) and STATEMENT.match(text):
            found.append((node.lineno, text.strip().splitlines()[0]))
    return found


def test_the_scan_finds_statements_and_not_prose() -> None:
    source = ('"""SELECT the rows: a docstring."""\n'
              'A = "SELECT 1"\nB = f"INSERT INTO t ({A}) VALUES (%s)"\n'
              'C = """\n  WITH x AS (SELECT 1) SELECT * FROM x"""\n'
              'D = "DELETE"\nE = "select me a colour"\nF = "Update: done"\n'
              'def f() -> None:\n    """COPY rows of these fields."""\n')
    assert sql_literals(source) == [(2, "SELECT 1"), (3, "INSERT INTO t ("),
                                    (4, "WITH x AS (SELECT 1) SELECT * FROM x")]


def test_no_sql_statement_outside_shiptrack_db() -> None:
    # named SQL (shiptrack/db/queries/) and the migrations hold every statement
    found = [f"{path.relative_to(ROOT)}:{line}: {text}"
             for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))
             if not path.is_relative_to(ROOT / "shiptrack" / "db")
             for line, text in sql_literals(path.read_text())]
    assert found == []
