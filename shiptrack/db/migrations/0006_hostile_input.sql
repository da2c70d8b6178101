-- Hostile input (docs/RELIABILITY.md).
-- A dead letter may stand for several rejected items of one message (the rest of a
-- message past shiptrack.decode.MAX_ROWS_PER_MESSAGE, or all of an array's non-objects).
ALTER TABLE dead_letters ADD COLUMN count integer NOT NULL DEFAULT 1;

-- Heavy geometry is computed once, when it is written through the API, and ingest loads
-- the result (well-known binary, lon/lat): a LineString geofence's buffered corridor,
-- and a shipment's route corridor. NULL: not precomputed (rows from before 0006, or no
-- route); ingest then builds it itself, within the same cost budget.
ALTER TABLE geofences ADD COLUMN shape_wkb bytea;
ALTER TABLE shipments ADD COLUMN route_corridor_wkb bytea;
