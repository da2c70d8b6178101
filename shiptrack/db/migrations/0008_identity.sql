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
