-- The exceptions queue (GET /api/v1/exceptions): an exception is an event (shiptrack/
-- exceptions.py says which types open one and which resolve it); a dispatcher's
-- acknowledgement is a row here, once per exception, with who, when and a note.
CREATE TABLE exception_acks (
    event_id        text PRIMARY KEY REFERENCES events (id) ON DELETE CASCADE,
    acknowledged_at timestamptz NOT NULL DEFAULT now(),
    acknowledged_by text NOT NULL,                 -- the name given, else the token's name
    token_id        text,                          -- the API token used (null: admin token)
    note            text
);

-- The queue finds each exception's resolving event by walking these (type, key, seq).
CREATE INDEX events_type_device_seq_idx ON events (type, device_id, seq);
CREATE INDEX events_type_shipment_seq_idx ON events (type, shipment_id, seq);
