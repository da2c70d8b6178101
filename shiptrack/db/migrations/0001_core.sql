-- Devices with their last position, and the dead-letter table for rejected input.
-- All times are UTC (timestamptz).

CREATE TABLE devices (
    device_id        text PRIMARY KEY,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_ts          timestamptz,
    lat              double precision,
    lon              double precision,
    speed            double precision,
    heading          double precision,
    accuracy         double precision,
    alt              double precision,
    battery          double precision,
    sensors          jsonb,
    attrs            jsonb,
    last_received_at timestamptz
);

CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,          -- 'mqtt' or 'http'
    topic       text NOT NULL,
    reason      text NOT NULL,          -- machine-readable, the metric label
    detail      text NOT NULL,          -- human-readable
    payload     bytea NOT NULL          -- the rejected bytes, bounded in size
);
CREATE INDEX dead_letters_received_at_idx ON dead_letters (received_at DESC);
CREATE INDEX dead_letters_reason_idx ON dead_letters (reason, received_at DESC);
