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

-- A write that changes the geometry (or the buffer) without a new precomputed shape (plain SQL,
-- an older API) forgets the old one, so that ingest never uses a stale corridor.
CREATE FUNCTION shiptrack_geofence_wkb_stale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.geometry IS DISTINCT FROM OLD.geometry
        OR NEW.properties -> 'buffer_m' IS DISTINCT FROM OLD.properties -> 'buffer_m')
       AND NEW.shape_wkb IS NOT DISTINCT FROM OLD.shape_wkb THEN
        NEW.shape_wkb := NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER geofences_wkb_stale BEFORE UPDATE ON geofences
    FOR EACH ROW EXECUTE FUNCTION shiptrack_geofence_wkb_stale();

CREATE FUNCTION shiptrack_route_wkb_stale() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.route IS DISTINCT FROM OLD.route
        OR NEW.route_corridor_m IS DISTINCT FROM OLD.route_corridor_m)
       AND NEW.route_corridor_wkb IS NOT DISTINCT FROM OLD.route_corridor_wkb THEN
        NEW.route_corridor_wkb := NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER shipments_route_wkb_stale BEFORE UPDATE ON shipments
    FOR EACH ROW EXECUTE FUNCTION shiptrack_route_wkb_stale();
