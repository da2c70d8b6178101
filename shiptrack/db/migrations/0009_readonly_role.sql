-- A read-only role for Grafana and SQL users (issue 13): SELECT on the documented tables
-- only (not api_tokens, webhooks and their secrets, broker_credentials, ws_tickets).
-- The role is made without LOGIN when missing; a deployment gives it a login and a
-- password (docker compose: deploy/timescaledb/grafana-role.sh at the database's first
-- start). Roles are per cluster: a second database only adds its grants.
DO $$ BEGIN
    CREATE ROLE shiptrack_readonly NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

DO $$
DECLARE t text;
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO shiptrack_readonly', current_database());
    GRANT USAGE ON SCHEMA public TO shiptrack_readonly;
    FOREACH t IN ARRAY ARRAY['positions', 'positions_hourly', 'devices', 'dead_letters',
                             'geofences', 'shipments', 'shipment_milestones',
                             'shipment_exceptions', 'events'] LOOP
        IF to_regclass(t) IS NOT NULL THEN
            EXECUTE format('GRANT SELECT ON %I TO shiptrack_readonly', t);
        END IF;
    END LOOP;
END $$;
