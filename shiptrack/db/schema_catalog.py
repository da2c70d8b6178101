"""The schema a database holds, read from ``pg_catalog``, as comparable, diffable text.

``shiptrack/db/schema.txt`` is this description of a database built by every migration
from zero; ``tests/integration/test_schema.py`` checks that a freshly migrated database
still equals it, so a migration that changes the schema changes that file in the same
commit (regenerate it with ``python -m shiptrack.db.schema_catalog --write``). The same
description compares the two storage variants (plain partitioning vs TimescaleDB).

Only the ``public`` schema is described, and only what a migration decides: relations
(kind, columns with type, nullability and default, constraints, indexes, triggers, grants,
view definitions), functions (signature, language, a digest of the body), enum types,
extensions, and the migrations applied. Partitions of a partitioned table are left out
(they are made at run time). ``NOT NULL`` appears on the column only (PostgreSQL 18 also
lists it as a constraint, 15 does not).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

SCHEMA_FILE = Path(__file__).with_name("schema.txt")
HEADER = (
    "-- The schema built by every migration from zero (shiptrack/db/schema_catalog.py).\n"
    "-- Do not edit: regenerate with `python -m shiptrack.db.schema_catalog --write`.\n"
)
KINDS = {"r": "table", "p": "partitioned table", "v": "view", "m": "materialized view",
         "S": "sequence", "f": "foreign table"}

Conn = psycopg.Connection[tuple[object, ...]]


@dataclass(slots=True)
class Relation:
    """One table, view or sequence: each list holds one line per item, in a stable order."""

    kind: str
    columns: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)
    indexes: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)
    definition: str | None = None


@dataclass(slots=True)
class Catalog:
    relations: dict[str, Relation]
    functions: dict[str, str]  # "name(identity args)" -> "returns T language L body <digest>"
    enums: dict[str, str]
    extensions: list[str]
    migrations: list[str]

    def render(self) -> str:
        lines: list[str] = []
        for name, rel in sorted(self.relations.items()):
            lines.append(f"{rel.kind} {name}")
            lines += [f"    column {c}" for c in rel.columns]
            lines += [f"    constraint {c}" for c in rel.constraints]
            lines += [f"    index {i}" for i in rel.indexes]
            lines += [f"    trigger {t}" for t in rel.triggers]
            lines += [f"    grant {g}" for g in rel.grants]
            if rel.definition is not None:
                lines.append(f"    as {rel.definition}")
        lines += [f"function {sig} {rest}" for sig, rest in sorted(self.functions.items())]
        lines += [f"enum {name} {labels}" for name, labels in sorted(self.enums.items())]
        lines += [f"extension {e}" for e in self.extensions]
        lines += [f"migration {m}" for m in self.migrations]
        return HEADER + "".join(f"{line}\n" for line in lines)


def _one_line(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def _rows(conn: Conn, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    return conn.execute(sql.encode(), params).fetchall()


def _relation(conn: Conn, oid: object, kind: str) -> Relation:
    rel = Relation(KINDS[kind])
    if kind == "S":  # a sequence's "columns" are its state; its owner column names it
        return rel
    for name, typ, notnull, default, identity, generated in _rows(conn, """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated
            FROM pg_attribute a
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum""", (oid,)):
        line = f"{name} {typ}"
        if notnull:
            line += " not null"
        if generated:
            line += f" generated always as ({default}) stored"
        elif default is not None:
            line += f" default {default}"
        if identity:
            line += " identity " + ("always" if identity == "a" else "by default")
        rel.columns.append(line)
    rel.constraints = [f"{n} {d}" for n, d in _rows(conn, """
            SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
            WHERE conrelid = %s AND contype <> 'n' ORDER BY conname""", (oid,))]
    rel.indexes = [str(d) for (d,) in _rows(conn, """
            SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s
            ORDER BY 1""", (oid,))]
    rel.triggers = [str(d) for (d,) in _rows(conn, """
            SELECT pg_get_triggerdef(oid) FROM pg_trigger
            WHERE tgrelid = %s AND NOT tgisinternal ORDER BY tgname""", (oid,))]
    rel.grants = [f"{g} {p}" for g, p in _rows(conn, """
            SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END,
                   string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type)
            FROM pg_class c, aclexplode(c.relacl) a
            WHERE c.oid = %s AND a.grantee <> c.relowner
            GROUP BY 1 ORDER BY 1""", (oid,))]
    if kind in ("v", "m"):
        rel.definition = _view_definition(conn, oid)
    return rel


def _view_definition(conn: Conn, oid: object) -> str:
    """``pg_get_viewdef`` on one line. PostgreSQL 16 stopped qualifying the columns of a
    view over one relation (``positions.ts`` became ``ts``): such qualifiers are dropped,
    so the text is the same on 15 and 18."""
    row = conn.execute("SELECT pg_get_viewdef(%s::oid, true)", (oid,)).fetchone()
    text = _one_line(str(row[0])) if row else ""
    read = _rows(conn, """
            SELECT DISTINCT d.refobjid::regclass::text FROM pg_rewrite r
            JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
            WHERE r.ev_class = %s AND d.refobjid <> %s
              AND d.refclassid = 'pg_class'::regclass""", (oid, oid))
    if len(read) == 1:
        text = re.sub(rf"\b{re.escape(str(read[0][0]))}\.(?=\w)", "", text)
    return text


def describe(conn: Conn) -> Catalog:
    """The catalog of the database ``conn`` is connected to."""
    relations = {
        str(name): _relation(conn, oid, str(kind))
        for oid, name, kind in _rows(conn, """
            SELECT c.oid, c.relname, c.relkind FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
              AND NOT c.relispartition""")
    }
    functions = {
        f"{name}({args})": f"returns {result} language {lang} body "
                           + hashlib.sha256(str(src).encode()).hexdigest()[:16]
        for name, args, result, lang, src in _rows(conn, """
            SELECT p.proname, pg_get_function_identity_arguments(p.oid),
                   pg_get_function_result(p.oid), l.lanname, p.prosrc
            FROM pg_proc p
            JOIN pg_namespace n ON n.oid = p.pronamespace
            JOIN pg_language l ON l.oid = p.prolang
            WHERE n.nspname = 'public' AND NOT EXISTS (
                SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')""")
    }
    enums = {
        str(name): str(labels) for name, labels in _rows(conn, """
            SELECT t.typname, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder)
            FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
            JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE n.nspname = 'public' GROUP BY t.typname""")
    }
    extensions = [str(e) for (e,) in _rows(conn, """
            SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1""")]
    migrations: list[str] = []
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone() not in (None, (None,)):
        migrations = [f"{v:04d}_{n}" for v, n in _rows(conn, """
            SELECT version, name FROM schema_migrations ORDER BY version""")
            if isinstance(v, int)]
    return Catalog(relations, functions, enums, extensions, migrations)


def migrated_catalog(admin_url: str) -> Catalog:
    """The catalog of a scratch database migrated from zero on the server of ``admin_url``."""
    from shiptrack.db.migrate import migrate

    name = f"shiptrack_schema_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"'.encode())
    try:
        url = make_conninfo(admin_url, dbname=name)
        migrate(url)
        with psycopg.connect(url, autocommit=True) as conn:
            return describe(conn)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shiptrack.db.schema_catalog",
        description="Print (or --write to shiptrack/db/schema.txt) the schema that the "
                    "migrations build, from a scratch database on the server of URL.")
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="an admin database URL (a scratch database is made and dropped)")
    parser.add_argument("--write", action="store_true", help=f"write {SCHEMA_FILE.name}")
    args = parser.parse_args(argv)
    text = migrated_catalog(args.url).render()
    if args.write:
        SCHEMA_FILE.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
