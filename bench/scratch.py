"""A migrated database of a benchmark's own on the server of SHIPTRACK_DATABASE_URL,
dropped afterwards: ``with scratch_database() as url: ...``."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from shiptrack.db.migrate import migrate

DEFAULT_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("SHIPTRACK_DATABASE_URL") or DEFAULT_ADMIN


def create_scratch(admin: str) -> str:
    """A new database (migrated) on ``admin``'s server; its URL."""
    name = f"shiptrack_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    url = make_conninfo(admin, dbname=name)
    try:
        migrate(url)
    except BaseException:
        drop_scratch(admin, url)
        raise
    return url


def drop_scratch(admin: str, url: str) -> None:
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@contextmanager
def scratch_database(admin: str | None = None) -> Iterator[str]:
    server = admin or admin_url()
    url = create_scratch(server)
    try:
        yield url
    finally:
        drop_scratch(server, url)
