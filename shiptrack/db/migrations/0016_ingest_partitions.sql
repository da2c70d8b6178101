-- Partitioned ingest (issue 18, docs/SCALING.md): one row per partition of the device
-- ids. A worker that takes a partition raises its epoch (in a transaction of its own);
-- every batch it commits writes the partition's row in the batch's own transaction,
-- checking that the epoch is still the one it took, so a stalled former owner can never
-- commit after another worker took the partition over (ingest/ownership.py).
CREATE TABLE ingest_partitions (
    partition    integer PRIMARY KEY CHECK (partition >= 0),
    epoch        bigint NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    owner        text,                                 -- the worker that took the epoch
    acquired_at  timestamptz,
    batches      bigint NOT NULL DEFAULT 0,            -- batches committed under any epoch
    committed_at timestamptz                           -- the last one
);
