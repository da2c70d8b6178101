-- Consignee notifications (docs/DESIGN.md "Notifications"): subscriptions per shipment,
-- a durable outbox with one row per (subscription, occurrence), and the fan-out cursor
-- over `events`. All times are UTC (timestamptz).

CREATE TABLE subscriptions (
    id                 text PRIMARY KEY,              -- 'sub_' + time-sortable id
    shipment_id        text NOT NULL REFERENCES shipments (id) ON DELETE CASCADE,
    channel            text NOT NULL CHECK (channel IN ('email', 'sms', 'webhook')),
    address            text NOT NULL,                 -- e-mail, E.164 number or URL
    language           text NOT NULL,                 -- BCP 47 tag, base language catalogued
    timezone           text NOT NULL,                 -- IANA zone
    quiet_start        time,                          -- local time; both or neither
    quiet_end          time,
    notify             text[] NOT NULL,
    state              text NOT NULL DEFAULT 'active'
                       CHECK (state IN ('pending', 'active', 'ended', 'bounced')),
    source             text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'customer')),
    secret             text,                          -- webhook channel: 'whsec_' + base64
    unsubscribe_token  text NOT NULL UNIQUE,          -- in every message's unsubscribe link
    confirm_hash       bytea,                         -- sha256 of the confirmation token
    start_seq          bigint NOT NULL DEFAULT 0,     -- events after this seq are notified
    notified_eta       timestamptz,                   -- ETA last told (eta_changed)
    failures           integer NOT NULL DEFAULT 0,    -- refused deliveries (4xx/5xx)
    last_error         text,
    last_error_at      timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    confirmed_at       timestamptz,
    ended_at           timestamptz,
    ended_reason       text,
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);
CREATE INDEX subscriptions_shipment_idx ON subscriptions (shipment_id, id);
CREATE INDEX subscriptions_unsubscribe_sha256_idx
    ON subscriptions (sha256(unsubscribe_token::bytea));
CREATE INDEX subscriptions_confirm_idx ON subscriptions (confirm_hash)
    WHERE confirm_hash IS NOT NULL;
-- one live subscription per shipment, channel and address
CREATE UNIQUE INDEX subscriptions_live_address_idx
    ON subscriptions (shipment_id, channel, lower(address))
    WHERE state IN ('pending', 'active');

-- One row per (subscription, occurrence): the unique key makes every occurrence sent
-- once, whichever process fans it out and however often. `context` freezes what the
-- message tells (rendered at send time, in the subscription's language and zone).
CREATE TABLE notification_outbox (
    id              bigserial PRIMARY KEY,
    subscription_id text NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    occurrence      text NOT NULL,                    -- the event id, or 'confirm'
    kind            text NOT NULL,                    -- picked_up, delayed, exception, confirm...
    event_id        text,
    context         jsonb NOT NULL DEFAULT '{}',
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_attempt_at timestamptz,
    held_until      timestamptz,                      -- last hold by quiet hours
    last_error      text,
    sent_at         timestamptz,
    failed_at       timestamptz,                      -- permanent refusal, or given up
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (subscription_id, occurrence)
);
CREATE INDEX notification_outbox_due_idx ON notification_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;

-- How far the notification fan-out has read `events` (by seq); one row, locked meanwhile.
CREATE TABLE notification_cursor (
    id       boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_seq bigint NOT NULL
);
