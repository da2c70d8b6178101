"""Run the TimescaleDB migration variants on plain PostgreSQL, to compare their catalogs.

TimescaleDB cannot be installed here, so ``test_schema.py`` cannot build a TimescaleDB
database. What it can do, faithfully enough to compare columns, types and indexes, is run
the ``*.timescale.sql`` files themselves on real PostgreSQL with TimescaleDB's part
replaced by what it does to the ``public`` schema:

- The files are parsed by PostgreSQL's own parser (``pglast``), not by regular
  expressions; statements are dropped or changed by their syntax tree, and what remains
  runs unchanged.
- ``ALTER TABLE ... SET (timescaledb.*)`` (compression settings) is dropped: it makes
  objects only in TimescaleDB's own schemas.
- ``WITH (timescaledb.continuous)`` is removed from ``CREATE MATERIALIZED VIEW``: the
  continuous aggregate becomes a plain materialized view with the same query, so its
  columns and their types are PostgreSQL's own answer.
- TimescaleDB's functions are stand-ins in a schema of their own (``timescale_shim``, not
  described by the catalog): ``time_bucket`` is ``date_bin`` from TimescaleDB's default
  origin (the same result type); the ``add_*_policy`` functions make nothing in
  ``public``; ``create_hypertable`` does what TimescaleDB does to the table itself
  (``ts_hypertable_create_from_info``): ``NOT NULL`` on the time column, and the default
  index ``<table>_<column>_idx`` on ``(<column> DESC)`` unless a one-column index on the
  time column exists (``indexing_create_and_verify_hypertable_indexes``), skipped with
  ``create_default_indexes => false``.
"""

from __future__ import annotations

from dataclasses import replace

from pglast import ast, parse_sql
from pglast.stream import RawStream

from shiptrack.db.migrate import Migration

SHIM_SCHEMA = "timescale_shim"

SHIM_SQL = f"""
CREATE SCHEMA {SHIM_SCHEMA};

CREATE FUNCTION {SHIM_SCHEMA}.by_range(column_name name, partition_interval anyelement
                                       DEFAULT NULL::interval)
RETURNS name LANGUAGE sql IMMUTABLE AS $$ SELECT column_name $$;

CREATE FUNCTION {SHIM_SCHEMA}.create_hypertable(relation regclass, dimension name,
    create_default_indexes boolean DEFAULT true, if_not_exists boolean DEFAULT false,
    migrate_data boolean DEFAULT false)
RETURNS TABLE (hypertable_id integer, created boolean) LANGUAGE plpgsql AS $$
DECLARE
    rel name := (SELECT relname FROM pg_class WHERE oid = relation);
    col smallint := (SELECT attnum FROM pg_attribute
                     WHERE attrelid = relation AND attname = dimension);
BEGIN
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', relation, dimension);
    IF create_default_indexes AND NOT EXISTS (
            SELECT 1 FROM pg_index WHERE indrelid = relation AND indnatts = 1
              AND indkey[0] = col) THEN
        EXECUTE format('CREATE INDEX %I ON %s (%I DESC)', rel || '_' || dimension || '_idx',
                       relation, dimension);
    END IF;
    RETURN QUERY SELECT 1, true;
END $$;

CREATE FUNCTION {SHIM_SCHEMA}.time_bucket(bucket_width interval, ts timestamptz)
RETURNS timestamptz LANGUAGE sql IMMUTABLE
AS $$ SELECT date_bin(bucket_width, ts, timestamptz '2000-01-03 00:00:00+00') $$;

CREATE FUNCTION {SHIM_SCHEMA}.add_compression_policy(hypertable regclass,
                                                      compress_after anyelement)
RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;

CREATE FUNCTION {SHIM_SCHEMA}.add_retention_policy(relation regclass, drop_after anyelement)
RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;

CREATE FUNCTION {SHIM_SCHEMA}.add_continuous_aggregate_policy(continuous_aggregate regclass,
    start_offset anyelement, end_offset anyelement, schedule_interval interval)
RETURNS integer LANGUAGE sql AS $$ SELECT 1 $$;
"""


def _timescale_options(options: object) -> bool:
    return isinstance(options, tuple) and any(
        isinstance(o, ast.DefElem) and o.defnamespace == "timescaledb" for o in options)


def _only_timescale_settings(stmt: ast.AlterTableStmt) -> bool:
    return all(isinstance(cmd, ast.AlterTableCmd) and _timescale_options(cmd.def_)
               for cmd in stmt.cmds or ())


def plain_sql(sql: str) -> str:
    """``sql`` with TimescaleDB's own syntax taken out (see the module's docstring)."""
    statements: list[str] = []
    for raw in parse_sql(sql):
        stmt = raw.stmt
        assert stmt is not None
        if isinstance(stmt, ast.AlterTableStmt) and _only_timescale_settings(stmt):
            continue
        if isinstance(stmt, ast.CreateTableAsStmt) and stmt.into is not None:
            kept = tuple(o for o in stmt.into.options or ()
                         if not (isinstance(o, ast.DefElem) and o.defnamespace == "timescaledb"))
            stmt.into.options = kept or None
        statements.append(RawStream()(stmt))
    return ";\n".join(statements) + ";\n"


def emulated(migration: Migration) -> Migration:
    """``migration`` as plain PostgreSQL runs it (unchanged unless it is a TimescaleDB one)."""
    if migration.variant != "timescale":
        return migration
    return replace(migration, sql=plain_sql(migration.sql))
