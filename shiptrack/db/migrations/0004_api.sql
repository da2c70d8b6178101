-- The API's own tables: bearer tokens (stored hashed), webhooks and their deliveries.
-- All times are UTC (timestamptz).

-- A token is shown once, at creation; only its SHA-256 is kept. Scopes: read, write,
-- admin (admin implies write, write implies read; stored expanded).
CREATE TABLE api_tokens (
    id           text PRIMARY KEY,                 -- 'tok_' + hex: public, for revocation
    name         text NOT NULL,
    token_hash   bytea NOT NULL UNIQUE,            -- sha256(token)
    scopes       text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

-- Standard Webhooks endpoints. The secret signs deliveries (an HMAC key), so it is kept
-- as issued; the API returns it only once, in the answer to the creating POST.
CREATE TABLE webhooks (
    id          text PRIMARY KEY,                  -- 'wh_' + hex
    url         text NOT NULL,
    event_types text[] NOT NULL DEFAULT '{}',      -- empty: every event type
    description text,
    secret      text NOT NULL,                     -- 'whsec_' + base64
    start_seq   bigint NOT NULL DEFAULT 0,         -- events after this seq are delivered
    created_at  timestamptz NOT NULL DEFAULT now(),
    deleted_at  timestamptz
);

-- One row per (webhook, event): the body is frozen when the row is made, so every retry
-- sends the same bytes; the signature is recomputed per attempt (fresh timestamp).
CREATE TABLE webhook_deliveries (
    id              bigserial PRIMARY KEY,
    webhook_id      text NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        text NOT NULL,
    event_seq       bigint NOT NULL,
    body            text NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_attempt_at timestamptz,
    last_status     integer,
    last_error      text,
    delivered_at    timestamptz,
    failed_at       timestamptz,                   -- gave up (too old)
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, event_id)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;

-- How far the delivery worker has read `events` (by seq); one row, locked while fanning out.
CREATE TABLE webhook_cursor (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_seq bigint NOT NULL
);

-- Public tracking looks shipments up by the SHA-256 of the token (shipments: 0003), so
-- the index compares digests, not the secret itself.
DO $$ BEGIN
    IF to_regclass('shipments') IS NOT NULL THEN
        CREATE INDEX shipments_tracking_token_sha256_idx
            ON shipments (sha256(tracking_token::bytea));
    END IF;
END $$;
