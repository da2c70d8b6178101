-- create_hypertable gave positions an index on ts alone (TimescaleDB's default when no
-- one-column index on the time column exists). No query reads positions by time across
-- devices (every read is by device_id, then ts: the primary key), so it only costs
-- writes; without it both storage variants have the same indexes (tests/integration/
-- test_schema.py compares them).
-- (On plain PostgreSQL there is no such index: a no-op, recorded in both variants.)
DROP INDEX IF EXISTS positions_ts_idx;
