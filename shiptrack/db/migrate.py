"""Numbered plain-SQL migrations, each applied once and recorded in ``schema_migrations``.

Files are ``NNNN_name.sql`` (always), ``NNNN_name.timescale.sql`` (only when the
TimescaleDB extension could be created) or ``NNNN_name.plain.sql`` (only without it).
The mode is chosen once, at the first migration of a database, and kept in
``shiptrack_meta`` so that a database never mixes the two.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict

from shiptrack.errors import StorageError

log = logging.getLogger("shiptrack.db")

Mode = Literal["timescale", "plain"]
FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(timescale|plain))?\.sql$")
LOCK_KEY = 0x5348_4950  # advisory lock: one migrator at a time


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    variant: str | None
    sql: str


def available(mode: Mode) -> list[Migration]:
    """The migrations shipped with the package that apply to ``mode``, in order."""
    found: list[Migration] = []
    for entry in resources.files("shiptrack.db.migrations").iterdir():
        match = FILE_RE.match(entry.name)
        if not match:
            continue
        variant = match.group(3)
        if variant is not None and variant != mode:
            continue
        found.append(Migration(int(match.group(1)), match.group(2), variant, entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(versions) != len(set(versions)):
        raise RuntimeError(f"duplicate migration numbers in {versions}")
    return found


def _detect_mode(conn: psycopg.Connection[tuple[object, ...]]) -> Mode:
    """TimescaleDB when ``CREATE EXTENSION IF NOT EXISTS timescaledb`` succeeds."""
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        log.info("TimescaleDB not available (%s): using plain PostgreSQL partitioning",
                 str(exc).strip().splitlines()[0])
        return "plain"
    return "timescale"


def _mode(conn: psycopg.Connection[tuple[object, ...]]) -> Mode:
    conn.execute("CREATE TABLE IF NOT EXISTS shiptrack_meta (key text PRIMARY KEY, value text)")
    row = conn.execute("SELECT value FROM shiptrack_meta WHERE key = 'storage_mode'").fetchone()
    if row is not None:
        return "timescale" if row[0] == "timescale" else "plain"
    mode = _detect_mode(conn)
    conn.execute(
        "INSERT INTO shiptrack_meta (key, value) VALUES ('storage_mode', %s)", (mode,)
    )
    return mode


def where(url: str) -> str:
    """``host:port/dbname`` of a database URL, never its password (for messages)."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error:
        return "(unparsable URL)"
    host = str(info.get("host") or "localhost")
    return f"{host}:{info.get('port') or 5432}/{info.get('dbname') or info.get('user') or ''}"


def connect(url: str, timeout: float = 5.0) -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection; ``StorageError`` (one line) when the server is unreachable."""
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=max(1, round(timeout)))
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StorageError(f"cannot reach the database at {where(url)}: {reason}") from exc


def migrate(url: str) -> list[str]:
    """Apply every pending migration; return the names applied (empty when up to date).
    One process at a time (an advisory lock); ``StorageError`` when unreachable."""
    applied: list[str] = []
    with connect(url) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            mode = _mode(conn)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")}
            for mig in available(mode):
                if mig.version in done:
                    continue
                log.info("applying migration %04d_%s (%s)", mig.version, mig.name, mode)
                with conn.transaction():
                    conn.execute(mig.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (mig.version, mig.name),
                    )
                applied.append(f"{mig.version:04d}_{mig.name}")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied


def storage_mode(url: str) -> Mode:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT value FROM shiptrack_meta WHERE key = 'storage_mode'").fetchone()
    return "timescale" if row and row[0] == "timescale" else "plain"
