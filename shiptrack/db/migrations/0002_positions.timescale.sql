-- positions as a TimescaleDB hypertable: 1-day chunks, compressed after 7 days,
-- dropped after 365 days, with an hourly continuous aggregate. Same columns, same
-- queries as the plain-PostgreSQL variant.

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
);

SELECT create_hypertable('positions', by_range('ts', INTERVAL '1 day'));

ALTER TABLE positions SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'ts DESC'
);
SELECT add_compression_policy('positions', INTERVAL '7 days');
SELECT add_retention_policy('positions', INTERVAL '365 days');

-- Chunks are created by TimescaleDB itself: the partition helper is a no-op here.
CREATE FUNCTION shiptrack_ensure_positions_partitions(months timestamptz[])
RETURNS void LANGUAGE plpgsql AS $$ BEGIN NULL; END $$;

CREATE MATERIALIZED VIEW positions_hourly
WITH (timescaledb.continuous) AS
SELECT device_id,
       time_bucket(INTERVAL '1 hour', ts) AS bucket,
       count(*)                           AS fixes,
       avg(speed)                         AS avg_speed,
       max(speed)                         AS max_speed,
       min(battery)                       AS min_battery
FROM positions
GROUP BY device_id, time_bucket(INTERVAL '1 hour', ts)
WITH NO DATA;

SELECT add_continuous_aggregate_policy('positions_hourly',
    start_offset => INTERVAL '3 days',
    end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes');
