-- Parcel carriers (docs/CARRIERS.md): a shipment may be followed by a carrier's tracking
-- number instead of (or after) a device of ours; what carriers report is stored once per
-- checkpoint, so a repeated push or poll changes nothing.
ALTER TABLE shipments ALTER COLUMN device_id DROP NOT NULL;
ALTER TABLE shipments ALTER COLUMN origin DROP NOT NULL;
ALTER TABLE shipments
    ADD COLUMN carrier text,                       -- dhl, ups, usps, fedex, ...
    ADD COLUMN carrier_tracking_number text,
    ADD COLUMN carrier_eta timestamptz,            -- the carrier's estimated delivery
    ADD COLUMN carrier_poll_at timestamptz,        -- when the poller looks next
    ADD COLUMN carrier_poll_failures integer NOT NULL DEFAULT 0,
    ADD CONSTRAINT shipments_carrier_pair CHECK ((carrier IS NULL) = (carrier_tracking_number IS NULL)),
    ADD CONSTRAINT shipments_followed CHECK (
        carrier IS NOT NULL OR (device_id IS NOT NULL AND origin IS NOT NULL));
CREATE INDEX shipments_tracking_number_idx ON shipments (carrier_tracking_number)
    WHERE carrier_tracking_number IS NOT NULL;
CREATE INDEX shipments_carrier_poll_idx ON shipments (carrier_poll_at)
    WHERE carrier IS NOT NULL
      AND status NOT IN ('delivered', 'returned_to_sender', 'cancelled');

-- One row per carrier checkpoint applied to a shipment: the idempotency key of carrier
-- updates (the provider's own id where it has one, else a digest of time, status, detail
-- and message), and the carrier's story in its own words.
CREATE TABLE carrier_checkpoints (
    shipment_id text NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    provider    text NOT NULL,                     -- easypost, aftership, karrio:<connector>
    key         text NOT NULL,
    ts          timestamptz NOT NULL,
    status      text,                              -- the provider's status / tag
    detail      text,                              -- its status_detail / subtag / reason
    message     text,
    location    text,
    mapped      jsonb NOT NULL DEFAULT '{}',       -- {status, code}: what it meant for us
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shipment_id, provider, key)
);
CREATE INDEX carrier_checkpoints_ts_idx ON carrier_checkpoints (shipment_id, ts);
