-- positions without TimescaleDB: native range partitioning by month on ts.
-- Partitions are created on demand by shiptrack_ensure_positions_partitions(), which
-- ingest calls before writing a month it has not seen (a no-op under TimescaleDB).

CREATE TABLE positions (
    device_id   text             NOT NULL,
    ts          timestamptz      NOT NULL,
    lat         double precision NOT NULL,
    lon         double precision NOT NULL,
    speed       double precision,
    heading     double precision,
    accuracy    double precision,
    alt         double precision,
    battery     double precision,
    seq         bigint,
    sensors     jsonb,
    attrs       jsonb,
    outlier     boolean          NOT NULL DEFAULT false,
    received_at timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (device_id, ts)
) PARTITION BY RANGE (ts);

CREATE FUNCTION shiptrack_ensure_positions_partitions(months timestamptz[])
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
            IF to_regclass(name) IS NULL THEN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF positions FOR VALUES FROM (%L) TO (%L)',
                    name, start, start + interval '1 month');
            END IF;
        END IF;
    END LOOP;
END $$;

-- Hourly per-device roll-up: a plain view here, a continuous aggregate under TimescaleDB;
-- same name, same columns.
CREATE VIEW positions_hourly AS
SELECT device_id,
       date_trunc('hour', ts) AS bucket,
       count(*)               AS fixes,
       avg(speed)             AS avg_speed,
       max(speed)             AS max_speed,
       min(battery)           AS min_battery
FROM positions
GROUP BY device_id, date_trunc('hour', ts);
