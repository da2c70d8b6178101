"""Migration 0009: the read-only role Grafana and SQL users read through can SELECT the
documented tables and nothing that holds secrets, and can write nothing."""

from __future__ import annotations

import psycopg
import pytest


def test_readonly_role_reads_the_documented_tables_only(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("SET ROLE shiptrack_readonly")
        for table in ("positions", "positions_hourly", "devices", "dead_letters", "geofences",
                      "shipments", "events"):
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        for table in ("api_tokens", "webhooks", "webhook_deliveries", "broker_credentials",
                      "ws_tickets", "schema_migrations"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM {table} LIMIT 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM devices")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE stolen (x int)")
