-- The SPEC's full status model (docs/CARRIERS.md): nine statuses whose transitions are
-- defined once, in shiptrack/shipments.py (TRANSITIONS), and checked by the guarded
-- milestone statement (shiptrack/db/tracking_sql.py RECORD_MILESTONE); exception codes;
-- milestone sources named for the door they came by (device, scan, api, carrier).

-- The rank function held a second copy of the order; the statement now takes the
-- allowed predecessors from shiptrack.shipments. The list below is checked against
-- shiptrack.shipments.STATUSES by tests/unit/test_status_model.py.
ALTER TABLE shipments DROP CONSTRAINT shipments_status_check;
DROP FUNCTION shiptrack_status_rank(text);
ALTER TABLE shipments ADD CONSTRAINT shipments_status_check CHECK (status IN (
    'created', 'picked_up', 'in_transit', 'out_for_delivery', 'delivered',
    'attempt_failed', 'available_for_pickup', 'returned_to_sender', 'cancelled'));

-- A status may be reached again (out_for_delivery after a failed attempt), so a status
-- is unique per time rather than once per shipment.
DROP INDEX shipment_milestones_status_key;
DROP INDEX shipment_milestones_hub_key;
CREATE UNIQUE INDEX shipment_milestones_key ON shipment_milestones (shipment_id, kind, ts);

UPDATE shipment_milestones SET source = 'device' WHERE source = 'geofence';
UPDATE shipment_milestones SET source = 'api' WHERE source = 'manual';

-- exception_code of each open exception (shiptrack.shipments.EXCEPTION_CODES)
ALTER TABLE shipment_exceptions ADD COLUMN code text NOT NULL DEFAULT 'other';
UPDATE shipment_exceptions SET code = CASE split_part(kind, ':', 1)
    WHEN 'device.offline' THEN 'offline' WHEN 'sensor.excursion' THEN 'sensor_excursion'
    WHEN 'route.deviation' THEN 'route_deviation' WHEN 'device.long_stop' THEN 'long_stop'
    ELSE 'other' END;
CREATE INDEX shipment_exceptions_code_idx ON shipment_exceptions (code, shipment_id);

-- shipments that are not final (active) for ingest's device index
DROP INDEX shipments_device_idx;
CREATE INDEX shipments_device_idx ON shipments (device_id)
    WHERE status NOT IN ('delivered', 'returned_to_sender', 'cancelled');
