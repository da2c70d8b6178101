"""The schema: migrations from zero build ``shiptrack/db/schema.txt``, and both storage
variants (plain partitioning, TimescaleDB) build the same columns, types and indexes.

The TimescaleDB variant runs on plain PostgreSQL with TimescaleDB's own statements
emulated (``timescale_emulation.py`` says how and why that is faithful for this check).
"""

from __future__ import annotations

import copy
import difflib
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from shiptrack.db import migrate as migrate_module
from shiptrack.db.migrate import Migration, Mode, migrate
from shiptrack.db.schema_catalog import SCHEMA_FILE, Catalog, Relation, describe
from tests.integration.timescale_emulation import SHIM_SCHEMA, SHIM_SQL, emulated, plain_sql

# What differs between the variants by design; anything else is drift.
EXPECTED_DIFFERENCES = [
    # a hypertable is a plain table to PostgreSQL; the plain variant partitions by month
    "positions: kind partitioned table != table",
    # a view here, a continuous aggregate there (same columns: compared above this line)
    "positions_hourly: kind view != materialized view",
    "positions_hourly: definition differs",
    # the partition helper is a no-op under TimescaleDB (same signature)
    "function shiptrack_ensure_positions_partitions(months timestamp with time zone[]): "
    "body differs",
]


def _catalog(url: str) -> Catalog:
    with psycopg.connect(url, autocommit=True) as conn:
        return describe(conn)


@pytest.fixture
def scratch_db(admin_db_url: str) -> Iterator[str]:
    """An empty database of this test's own (not cloned from the migrated template)."""
    name = f"shiptrack_s_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_db_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    yield make_conninfo(admin_db_url, dbname=name)
    with psycopg.connect(admin_db_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def timescale_variant(url: str, monkeypatch: pytest.MonkeyPatch) -> Catalog:
    """Migrate the empty database ``url`` in TimescaleDB mode (emulated); its catalog."""
    shimmed = make_conninfo(url, options=f"-c search_path=public,{SHIM_SCHEMA}")
    with psycopg.connect(shimmed, autocommit=True) as conn:
        conn.execute(SHIM_SQL.encode())
        conn.execute("CREATE TABLE shiptrack_meta (key text PRIMARY KEY, value text)")
        conn.execute("INSERT INTO shiptrack_meta VALUES ('storage_mode', 'timescale')")
    shipped = migrate_module.available

    def available(mode: Mode) -> list[Migration]:
        return [emulated(m) for m in shipped(mode)]

    monkeypatch.setattr(migrate_module, "available", available)
    migrate(shimmed)
    assert migrate_module.storage_mode(url) == "timescale"
    return _catalog(url)


def differences(plain: Catalog, timescale: Catalog) -> list[str]:
    """Every way the two variants' catalogs differ, one readable line each."""
    found: list[str] = []
    for name in sorted(plain.relations.keys() | timescale.relations.keys()):
        p, t = plain.relations.get(name), timescale.relations.get(name)
        if p is None or t is None:
            found.append(f"{name}: only in {'timescale' if p is None else 'plain'}")
            continue
        if p.kind != t.kind:
            found.append(f"{name}: kind {p.kind} != {t.kind}")
        for part in ("columns", "constraints", "indexes", "triggers", "grants"):
            # an index of a partitioned table is made ``ON ONLY`` the parent
            pl = [x.replace(" ON ONLY ", " ON ") for x in getattr(p, part)]
            tl = [x.replace(" ON ONLY ", " ON ") for x in getattr(t, part)]
            if part == "columns" and [c.split()[0] for c in pl] == [c.split()[0] for c in tl]:
                found += [f"{name}: column {a} != {b}" for a, b in zip(pl, tl, strict=True)
                          if a != b]
                continue
            found += [f"{name}: {part[:-1] if part != 'indexes' else 'index'} only in plain: {x}"
                      for x in pl if x not in tl]
            found += [f"{name}: {part[:-1] if part != 'indexes' else 'index'} "
                      f"only in timescale: {x}" for x in tl if x not in pl]
        if p.definition != t.definition:
            found.append(f"{name}: definition differs")
    for sig in sorted(plain.functions.keys() | timescale.functions.keys()):
        pf, tf = plain.functions.get(sig), timescale.functions.get(sig)
        if pf is None or tf is None:
            found.append(f"function {sig}: only in {'timescale' if pf is None else 'plain'}")
        elif pf.rsplit(" body ", 1)[0] != tf.rsplit(" body ", 1)[0]:
            found.append(f"function {sig}: {pf} != {tf}")
        elif pf != tf:
            found.append(f"function {sig}: body differs")
    if plain.migrations != timescale.migrations:
        found.append(f"migrations {plain.migrations} != {timescale.migrations}")
    return found


def test_migrations_from_zero_build_the_checked_in_schema(db_url: str) -> None:
    # db_url is a copy of the session's template, built by every migration from zero
    built = _catalog(db_url).render()
    checked_in = SCHEMA_FILE.read_text()
    diff = "".join(difflib.unified_diff(
        checked_in.splitlines(keepends=True), built.splitlines(keepends=True),
        "shiptrack/db/schema.txt", "migrated from zero"))
    assert built == checked_in, (
        "the migrations no longer build shiptrack/db/schema.txt; if that is intended, "
        "regenerate it: python -m shiptrack.db.schema_catalog --write\n" + diff)


def test_the_checked_in_schema_names_every_migration() -> None:
    shipped = [f"{m.version:04d}_{m.name}" for m in migrate_module.available("plain")]
    listed = [line.split()[1] for line in SCHEMA_FILE.read_text().splitlines()
              if line.startswith("migration ")]
    assert listed == shipped


def test_both_storage_variants_have_the_same_columns_types_and_indexes(
        db_url: str, scratch_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = _catalog(db_url)
    timescale = timescale_variant(scratch_db, monkeypatch)
    assert plain.relations["positions"].kind == "partitioned table"
    assert timescale.relations["positions"].kind == "table"
    assert timescale.relations["positions_hourly"].kind == "materialized view"
    assert differences(plain, timescale) == EXPECTED_DIFFERENCES


def test_the_variant_check_reports_a_drifted_column_and_index() -> None:
    table = Relation("table", columns=["ts timestamp with time zone not null", "lat real"],
                     indexes=["CREATE INDEX a ON public.t USING btree (ts)"])
    plain = Catalog({"t": table}, {}, {}, [], ["0001_core"])
    drifted = copy.deepcopy(plain)
    drifted.relations["t"].columns[1] = "lat double precision"
    drifted.relations["t"].indexes = []
    assert differences(plain, drifted) == [
        "t: column lat real != lat double precision",
        "t: index only in plain: CREATE INDEX a ON public.t USING btree (ts)",
    ]
    assert differences(plain, copy.deepcopy(plain)) == []


def test_the_emulation_keeps_everything_but_timescaledb_syntax() -> None:
    sql = (
        "CREATE TABLE p (ts timestamptz NOT NULL, v int);\n"
        "SELECT create_hypertable('p', by_range('ts'));\n"
        "ALTER TABLE p SET (timescaledb.compress, timescaledb.compress_segmentby = 'v');\n"
        "CREATE MATERIALIZED VIEW h WITH (timescaledb.continuous) AS "
        "SELECT time_bucket(INTERVAL '1 hour', ts) AS b, count(*) FROM p GROUP BY 1 "
        "WITH NO DATA;\n"
    )
    out = plain_sql(sql)
    assert "timescaledb" not in out
    assert out.count(";") == 3
    assert "CREATE TABLE p (ts timestamptz NOT NULL, v integer)" in out
    assert "create_hypertable('p', by_range('ts'))" in out
    assert "CREATE MATERIALIZED VIEW h AS SELECT time_bucket(" in out
    assert out.rstrip().endswith("WITH NO DATA;")
