"""The partitioned ingest's ownership rows (``ingest_partitions``, migration 0016): a
worker taking a partition raises its epoch; each batch's fence checks the epochs it took
in the batch's own transaction (ingest/ownership.py)."""

# how long the session waits for a lock (%s, e.g. '3000ms'; ingest/ownership.py gives
# the lease's length)
LOCK_TIMEOUT = "SELECT set_config('lock_timeout', %s, false)"
BUMP_EPOCH = """
INSERT INTO ingest_partitions AS p (partition, epoch, owner, acquired_at)
VALUES (%s, 1, %s, now())
ON CONFLICT (partition) DO UPDATE
SET epoch = p.epoch + 1, owner = excluded.owner, acquired_at = excluded.acquired_at
RETURNING epoch
"""
FENCE = """
UPDATE ingest_partitions AS p SET batches = p.batches + 1, committed_at = now()
FROM unnest(%s::int[], %s::bigint[]) AS h(partition, epoch)
WHERE p.partition = h.partition AND p.epoch = h.epoch
RETURNING p.partition
"""
