"""Every panel of the provisioned Grafana dashboards runs against a migrated database.

Grafana's PostgreSQL data source expands its macros before it sends a query; this test
expands them the same way (``$__timeFilter``, ``$__timeGroup[Alias]`` with and without
TimescaleDB, ``$__timeFrom``/``$__timeTo``, ``$__interval``) and fails on any macro it
does not know, so a panel that Grafana could not run fails here first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from shiptrack.db.migrate import storage_mode

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards" / "grafana" / "dashboards"
FROM = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
TO = FROM + timedelta(days=1)
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for p in items:
        yield p
        yield from panels(p.get("panels", []))


def queries() -> list[tuple[str, str]]:
    found = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for p in panels(json.loads(path.read_text())["panels"]):
            for t in p.get("targets", []):
                if t.get("rawSql"):
                    found.append((f"{path.stem}: {p.get('title')} ({t.get('refId', '?')})",
                                  t["rawSql"]))
    return found


def seconds(interval: str) -> int:
    m = re.fullmatch(r"'?(\d+)([smhd])'?", interval.strip())
    assert m, f"interval {interval!r}"
    return int(m.group(1)) * UNITS[m.group(2)]


def expand(sql: str, timescale: bool) -> str:
    """The SQL Grafana would send for the time range FROM..TO."""
    lo, hi = FROM.isoformat(), TO.isoformat()

    def group(m: re.Match[str], alias: bool) -> str:
        column, step = m.group(1).strip(), seconds(m.group(2))
        expr = (f"time_bucket('{step}s', {column})" if timescale
                else f"floor(extract(epoch from {column})/{step})*{step}")
        return expr + (' AS "time"' if alias else "")

    sql = re.sub(r"\$__timeFilter\(([^)]+)\)",
                 lambda m: f"{m.group(1).strip()} BETWEEN '{lo}' AND '{hi}'", sql)
    sql = re.sub(r"\$__timeGroupAlias\(([^,]+),([^)]+)\)", lambda m: group(m, True), sql)
    sql = re.sub(r"\$__timeGroup\(([^,]+),([^)]+)\)", lambda m: group(m, False), sql)
    sql = sql.replace("$__timeFrom()", f"'{lo}'").replace("$__timeTo()", f"'{hi}'")
    sql = sql.replace("$__interval", "'1 minute'")
    unknown = re.findall(r"\$__\w+", sql)
    assert not unknown, f"macros this test does not know: {unknown}"
    assert "$" not in re.sub(r"'[^']*'", "", sql), "a dashboard variable: add it to the test"
    return sql


def test_every_dashboard_has_panels() -> None:
    assert len(queries()) >= 10


def test_every_panel_query_runs(db_url: str) -> None:
    """One database for all panels (a fresh one each is 0.5 s a panel)."""
    timescale = storage_mode(db_url) == "timescale"
    with psycopg.connect(db_url, autocommit=True) as conn:
        ts = FROM + timedelta(hours=1)
        if not timescale:  # monthly partitions are made on demand, as ingest does
            conn.execute("SELECT shiptrack_ensure_positions_partitions(ARRAY[%s::timestamptz])",
                         (ts,))
        conn.execute("INSERT INTO positions (device_id, ts, lat, lon, speed, received_at)"
                     " VALUES ('d1', %s, 52.5, 13.4, 10, %s)", (ts, ts + timedelta(seconds=2)))
        conn.execute("INSERT INTO devices (device_id, last_ts, lat, lon, speed)"
                     " VALUES ('d1', %s, 52.5, 13.4, 10)", (ts,))
        failed = []
        for name, sql in queries():
            try:
                conn.execute(expand(sql, timescale).encode()).fetchall()
            except psycopg.Error as exc:
                failed.append(f"{name}: {exc}")
        assert not failed, failed
        # and the time series panels see the row in their range
        [(n,)] = conn.execute(expand(
            "SELECT count(*) FROM positions WHERE $__timeFilter(ts)", timescale)).fetchall()
        assert n == 1
