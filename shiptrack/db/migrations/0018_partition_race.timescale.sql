-- The plain variant's partition helper no longer races at a new month; under
-- TimescaleDB the helper is a no-op (chunks are TimescaleDB's), so nothing changes:
-- recorded in both variants so that both list the same migrations.
SELECT 1;
