"""Who owns which partition (docs/SCALING.md, "Ownership"): leases in JetStream KV, an
epoch per partition in the database, and the fence that checks it in each batch.

* Workers register in the KV bucket ``shiptrack_workers`` (one key each, refreshed every
  third of ``SHIPTRACK_NATS_LEASE_S``; the bucket's max age drops a silent one).
* A partition's lease is the key ``p<n>`` of ``shiptrack_leases``: created by the one
  worker that takes it (``create`` fails when it exists), refreshed by compare-and-set on
  its revision (fails once another worker holds it), dropped by max age when its owner
  falls silent.
* Holding the lease, the worker raises the partition's epoch in ``ingest_partitions``
  (a transaction of its own). Every batch writes the row of each of its partitions in the
  batch's own transaction, on condition that the epoch is still the one taken
  (:meth:`Ownership.fence`); a former owner that stalled past its lease and resumes
  therefore cannot commit: ``FenceLost``. The row lock orders the two: a batch holding it
  commits before the new owner's epoch, whose first batch then loads what it committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from nats.js.api import KeyValueConfig, StorageType
from nats.js.client import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from ingest.pipeline import Fence, FenceLost
from shiptrack.db.queries.partitions import BUMP_EPOCH, FENCE, LOCK_TIMEOUT

log = logging.getLogger("shiptrack.ingest")
WORKERS_BUCKET = "shiptrack_workers"
LEASES_BUCKET = "shiptrack_leases"

class PartitionsLost(FenceLost):
    """The fence found other epochs: these partitions belong to another worker now."""

    def __init__(self, partitions: set[int]) -> None:
        super().__init__(f"partitions {sorted(partitions)} were taken over")
        self.partitions = partitions


@dataclass(slots=True)
class Held:
    revision: int  # of the lease key, for compare-and-set
    epoch: int


def fence_for(epochs: dict[int, int]) -> Fence:
    """The fence of a batch of these partitions (their epochs as taken)."""
    partitions = sorted(epochs)

    def fence(conn: psycopg.Connection[Any]) -> None:
        rows = conn.execute(FENCE, (partitions, [epochs[p] for p in partitions])).fetchall()
        lost = set(partitions) - {int(r[0]) for r in rows}
        if lost:
            raise PartitionsLost(lost)

    return fence


class Ownership:
    def __init__(self, js: JetStreamContext, worker_id: str, lease_s: float,
                 database_url: str) -> None:
        self.js = js
        self.worker_id = worker_id
        self.lease_s = lease_s
        self.database_url = database_url
        self.held: dict[int, Held] = {}
        self._workers: KeyValue | None = None
        self._leases: KeyValue | None = None

    async def open(self) -> None:
        self._workers = await _bucket(self.js, WORKERS_BUCKET, self.lease_s)
        self._leases = await _bucket(self.js, LEASES_BUCKET, self.lease_s)

    @property
    def leases(self) -> KeyValue:
        assert self._leases is not None, "open() first"
        return self._leases

    async def register(self) -> None:
        assert self._workers is not None, "open() first"
        await self._workers.put(self.worker_id, b"live")

    async def deregister(self) -> None:
        if self._workers is not None:
            try:
                await self._workers.delete(self.worker_id)
            except Exception as exc:
                log.debug("deregister: %s", exc)

    async def live_workers(self) -> set[str]:
        assert self._workers is not None, "open() first"
        try:
            keys = await self._workers.keys()
        except NotFoundError:  # nats-py: no keys at all
            return set()
        return set(keys)

    async def refresh(self) -> set[int]:
        """Renew every held lease; returns the partitions whose lease another worker
        holds now (dropped from ``held``)."""
        lost = set()
        for partition, held in list(self.held.items()):
            try:
                held.revision = await self.leases.update(
                    _key(partition), self.worker_id.encode(), last=held.revision)
            except KeyWrongLastSequenceError:
                lost.add(partition)
                self.held.pop(partition, None)
        if lost:
            log.warning("%s lost the leases of partitions %s", self.worker_id, sorted(lost))
        return lost

    async def try_acquire(self, partition: int) -> bool:
        """Take a free partition's lease; raise its epoch in the database."""
        try:
            revision = await self.leases.create(_key(partition), self.worker_id.encode())
        except KeyWrongLastSequenceError:
            return False  # another worker holds it (it lets go when it sees us)
        except KeyNotFoundError:
            # nats-py's create, finding a key there, reads it to see whether it is a
            # delete marker; the old owner's lease lapsing (max age) in between makes the
            # read fail: the partition is free now, taken at the next rebalance
            return False
        try:
            epoch = await asyncio.to_thread(self._bump, partition)
        except psycopg.Error as exc:
            log.warning("cannot raise the epoch of partition %d (%s); retried later",
                        partition, str(exc).splitlines()[0] if str(exc) else exc)
            await self._delete_lease(partition, revision)
            return False
        self.held[partition] = Held(revision, epoch)
        return True

    def _bump(self, partition: int) -> int:
        with psycopg.connect(self.database_url, connect_timeout=5, autocommit=True) as conn:
            conn.execute(LOCK_TIMEOUT, (f"{int(self.lease_s * 1000)}ms",))
            row = conn.execute(BUMP_EPOCH, (partition, self.worker_id)).fetchone()
            assert row is not None
            return int(row[0])

    async def release(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            held = self.held.pop(partition, None)
            if held is not None:
                await self._delete_lease(partition, held.revision)

    def drop(self, partitions: Iterable[int]) -> None:
        """Forget partitions found lost (their leases are someone else's)."""
        for partition in partitions:
            self.held.pop(partition, None)

    async def _delete_lease(self, partition: int, revision: int) -> None:
        try:
            await self.leases.delete(_key(partition), last=revision)
        except Exception as exc:  # taken meanwhile, or the broker is away: max age frees it
            log.debug("lease p%d not deleted: %s", partition, exc)

    def epochs(self, partitions: Iterable[int]) -> dict[int, int]:
        return {p: self.held[p].epoch for p in partitions if p in self.held}


def _key(partition: int) -> str:
    return f"p{partition}"


async def _bucket(js: JetStreamContext, name: str, ttl_s: float) -> KeyValue:
    try:
        return await js.key_value(name)
    except Exception:  # not there yet (nats-py raises BucketNotFoundError or NotFoundError)
        return await js.create_key_value(KeyValueConfig(
            bucket=name, history=1, ttl=ttl_s, storage=StorageType.FILE))
