-- Device identity (issue 13): the record of each broker credential issued over the API,
-- and single-use WebSocket tickets. All times are UTC.

-- One row per issued broker login. The password is never stored here: the broker's
-- dynamic-security file holds only its salted PBKDF2-SHA512 hash. A revoked row keeps
-- its history; issuing again for the same subject makes a new row.
CREATE TABLE broker_credentials (
    id         text PRIMARY KEY,                  -- 'cred_' + hex
    kind       text NOT NULL CHECK (kind IN ('device', 'scanner', 'owntracks')),
    subject    text NOT NULL,                     -- device id, scanner id, OwnTracks user
    username   text NOT NULL,                     -- kind.subject (also the client id)
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
CREATE UNIQUE INDEX broker_credentials_active_idx ON broker_credentials (kind, subject)
    WHERE revoked_at IS NULL;

-- A WebSocket ticket: shown once, kept as its SHA-256, used once, short-lived. It opens
-- /ws/fleet with the scopes of the bearer token that asked for it.
CREATE TABLE ws_tickets (
    ticket_hash bytea PRIMARY KEY,
    scopes      text[] NOT NULL,
    token_id    text,                              -- NULL: the admin token
    expires_at  timestamptz NOT NULL
);
CREATE INDEX ws_tickets_expires_idx ON ws_tickets (expires_at);

-- Tracking tokens kept as digests, like API tokens: only SHA-256 of a tracking token is
-- stored (tracking_token_hash); a trigger turns any token written into the old column
-- into its digest and clears the column, so every writer keeps working and no plaintext
-- stays. Existing links keep working: their tokens are hashed here. The token itself is
-- in the answer to the POST that made the shipment only.
ALTER TABLE shipments ADD COLUMN tracking_token_hash bytea;
ALTER TABLE shipments ALTER COLUMN tracking_token DROP NOT NULL;

CREATE FUNCTION shiptrack_hash_tracking_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.tracking_token IS NOT NULL THEN
        NEW.tracking_token_hash := sha256(NEW.tracking_token::bytea);
        NEW.tracking_token := NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER shipments_hash_tracking_token BEFORE INSERT OR UPDATE OF tracking_token
    ON shipments FOR EACH ROW EXECUTE FUNCTION shiptrack_hash_tracking_token();

UPDATE shipments SET tracking_token = tracking_token WHERE tracking_token IS NOT NULL;
CREATE UNIQUE INDEX shipments_tracking_token_hash_idx ON shipments (tracking_token_hash);
DROP INDEX IF EXISTS shipments_tracking_token_sha256_idx;
