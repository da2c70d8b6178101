-- Tracking: geofences, shipments with their milestones and open exceptions, the event
-- log, and the per-device tracking state ingest keeps (so a restart neither repeats nor
-- loses an event). Plain PostgreSQL, with or without TimescaleDB. All times UTC.

CREATE TABLE geofences (
    id          text PRIMARY KEY,                  -- 'gf_' + time-sortable id
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('polygon', 'circle', 'corridor')),
    geometry    jsonb NOT NULL,                    -- the GeoJSON geometry as given
    properties  jsonb NOT NULL DEFAULT '{}',       -- name, radius_m, buffer_m, dwell_s, ...
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- What ingest polls to notice changes without a restart (and a NOTIFY for listeners).
CREATE TABLE tracking_versions (
    name    text PRIMARY KEY,
    version bigint NOT NULL DEFAULT 0
);
INSERT INTO tracking_versions (name) VALUES ('geofences'), ('shipments');

CREATE FUNCTION shiptrack_bump_version(what text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tracking_versions SET version = version + 1 WHERE name = what;
    PERFORM pg_notify('shiptrack_tracking', what);
END $$;

CREATE FUNCTION shiptrack_geofences_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM shiptrack_bump_version('geofences');
    RETURN NULL;
END $$;

CREATE TRIGGER geofences_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON geofences
    FOR EACH STATEMENT EXECUTE FUNCTION shiptrack_geofences_changed();

-- Shipment statuses in their only allowed order: milestones never go backwards.
CREATE FUNCTION shiptrack_status_rank(status text) RETURNS integer
    LANGUAGE sql IMMUTABLE AS $$
    SELECT array_position(
        ARRAY['created', 'picked_up', 'in_transit', 'out_for_delivery', 'delivered'], status)
$$;

CREATE TABLE shipments (
    id               text PRIMARY KEY,             -- 'shp_' + time-sortable id
    reference        text NOT NULL UNIQUE,
    device_id        text NOT NULL,
    tracking_token   text NOT NULL UNIQUE,
    origin           jsonb NOT NULL,               -- {lat, lon, radius_m} or {geofence_id}
    destination      jsonb NOT NULL,
    promised_by      timestamptz,
    route            jsonb,                        -- GeoJSON LineString
    route_corridor_m double precision,             -- null: SHIPTRACK_ROUTE_CORRIDOR_M
    sensor_limits    jsonb NOT NULL DEFAULT '{}',  -- {"temperature_c": {"min", "max", "for_s"}}
    status           text NOT NULL DEFAULT 'created'
                     CHECK (shiptrack_status_rank(status) IS NOT NULL),
    eta              timestamptz,
    eta_low          timestamptz,
    eta_high         timestamptz,
    remaining_m      double precision,
    at_risk          boolean NOT NULL DEFAULT false,
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX shipments_device_idx ON shipments (device_id) WHERE status <> 'delivered';
CREATE INDEX shipments_status_idx ON shipments (status, id);

CREATE TABLE shipment_milestones (
    id          bigserial PRIMARY KEY,
    shipment_id text NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    kind        text NOT NULL,                     -- a status, or 'hub' (a hub scan)
    ts          timestamptz NOT NULL,
    source      text NOT NULL,                     -- geofence, scan, manual
    data        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
-- each status once per shipment; hub scans once per (time, kind)
CREATE UNIQUE INDEX shipment_milestones_status_key ON shipment_milestones (shipment_id, kind)
    WHERE kind <> 'hub';
CREATE UNIQUE INDEX shipment_milestones_hub_key ON shipment_milestones (shipment_id, kind, ts)
    WHERE kind = 'hub';

-- Open exceptions of a shipment: a row while the condition lasts (the flag and its reason).
CREATE TABLE shipment_exceptions (
    shipment_id text NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    kind        text NOT NULL,                     -- device.offline, sensor.excursion:<key>, ...
    since       timestamptz NOT NULL,
    reason      text NOT NULL,
    data        jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (shipment_id, kind)
);

-- The event log. `id` is public (and the webhook idempotency key); `seq` orders it.
CREATE TABLE events (
    seq         bigserial UNIQUE NOT NULL,
    id          text PRIMARY KEY,
    ts          timestamptz NOT NULL,              -- when it happened
    type        text NOT NULL,
    device_id   text,
    shipment_id text,
    geofence_id text,
    data        jsonb NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_ts_idx ON events (ts);
CREATE INDEX events_type_idx ON events (type, seq);
CREATE INDEX events_device_idx ON events (device_id, seq);
CREATE INDEX events_shipment_idx ON events (shipment_id, seq);

-- Ingest's tracking state per device (fence states, detectors), written in the same
-- transaction as the positions that changed it. `live`: the device has sent fresh
-- fixes, so it is watched for going offline; `offline`: it is.
CREATE TABLE device_tracking (
    device_id  text PRIMARY KEY,
    state      jsonb NOT NULL,
    live       boolean NOT NULL DEFAULT false,
    offline    boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_tracking_watch_idx ON device_tracking (device_id) WHERE live AND NOT offline;
