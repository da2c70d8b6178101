"""Ownership's lease taking, against a stand-in for the KV bucket (pure logic)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from ingest.ownership import Ownership


class LapsingLeases:
    """nats-py's create on a key still there reads it back; the old owner's lease lapsing
    (max age) in between makes that read raise KeyNotFoundError."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def create(self, key: str, value: bytes) -> int:
        raise self.error


def owner_with(leases: LapsingLeases) -> Ownership:
    own = Ownership(cast(Any, None), "wb", 3.0, "postgresql://unused")
    own._leases = cast(Any, leases)
    return own


def test_a_lease_lapsing_while_it_is_taken_is_not_taken_now_and_no_crash() -> None:
    own = owner_with(LapsingLeases(KeyNotFoundError()))
    assert asyncio.run(own.try_acquire(3)) is False
    assert own.held == {}


def test_a_lease_held_by_another_is_not_taken() -> None:
    own = owner_with(LapsingLeases(KeyWrongLastSequenceError()))
    assert asyncio.run(own.try_acquire(3)) is False
    assert own.held == {}
