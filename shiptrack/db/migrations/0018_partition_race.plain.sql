-- Two ingest workers writing the first fixes of a new month at once: the second one,
-- having waited on the advisory lock, still saw the partition missing (a name looked up
-- before the wait stays cached until a lock on a relation or namespace makes the
-- backend read the catalog's invalidations, and an advisory lock is neither), created
-- it again and failed its batch with DuplicateTable. CREATE TABLE IF NOT EXISTS locks
-- the namespace first and so looks at the catalog as committed: the second worker skips.
CREATE OR REPLACE FUNCTION shiptrack_ensure_positions_partitions(months timestamptz[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    m     timestamptz;
    start timestamptz;
    name  text;
BEGIN
    FOREACH m IN ARRAY months LOOP
        start := date_trunc('month', m AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
        name := 'positions_' || to_char(start AT TIME ZONE 'UTC', 'YYYYMM');
        IF to_regclass(name) IS NULL THEN
            PERFORM pg_advisory_xact_lock(hashtext('shiptrack.positions.partitions'));
            EXECUTE format(
                'CREATE TABLE IF NOT EXISTS %I PARTITION OF positions'
                ' FOR VALUES FROM (%L) TO (%L)',
                name, start, start + interval '1 month');
        END IF;
    END LOOP;
END $$;
