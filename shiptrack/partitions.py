"""Partitions of the device ids (pure): which partition a device is in, how MQTT topics
and NATS subjects map onto each other, and which live worker owns which partition.

The broker does the partitioning (docs/SCALING.md): nats-server's subject mapping
``partition(n, token)`` puts every MQTT publish of a device on the subject of its
partition, ``shiptrack_in.<p>.<the publish's own subject>``; :func:`partition_of` is the
same function (FNV-1a 32 over the device's subject token(s), modulo n), for the parts of
shiptrack that must know a device's partition without a message.

Assignment is rendezvous (highest-random-weight) hashing over the live workers: each
partition goes to the worker with the highest score for it, so a worker joining or
leaving moves only the partitions it gains or had (about 1/n of them), never the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from shiptrack.topics import OWNTRACKS_FILTER, POSITION_FILTER, SCAN_FILTER

SUBJECT_ROOT = "shiptrack_in"  # the partitioned subjects: shiptrack_in.<p>.<subject>
STREAM = "SHIPTRACK_IN"  # the JetStream stream over them

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def fnv1a_32(data: bytes) -> int:
    h = _FNV_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def level_to_token(level: str) -> str:
    """One MQTT topic level as nats-server's MQTT listener writes it in a subject
    (2.10+: a '.' of the level becomes '//')."""
    return level.replace(".", "//")


def topic_to_subject(topic: str) -> str:
    """An MQTT topic (or filter: '+' -> '*', '#' -> '>') as a NATS subject."""
    tokens = []
    for level in topic.split("/"):
        tokens.append({"+": "*", "#": ">"}.get(level, level_to_token(level)))
    return ".".join(tokens)


def subject_to_topic(subject: str) -> str:
    """The inverse of :func:`topic_to_subject` (for a subject without wildcards)."""
    return "/".join(token.replace("//", ".") for token in subject.split("."))


def partition_subject(partition: int) -> str:
    """The filter of one partition's durable consumer."""
    return f"{SUBJECT_ROOT}.{partition}.>"


def consumer_name(partition: int) -> str:
    return f"part-{partition:04d}"


def split_partitioned(subject: str) -> tuple[int, str]:
    """``shiptrack_in.<p>.<subject>`` -> (p, the MQTT topic it was published on)."""
    root, number, rest = subject.split(".", 2)
    if root != SUBJECT_ROOT:
        raise ValueError(f"{subject!r} is not a partitioned subject")
    return int(number), subject_to_topic(rest)


def partition_of(device_tokens: Iterable[str], partitions: int) -> int:
    """The partition nats-server's ``partition(n, ...)`` gives: FNV-1a 32 over the
    concatenated subject tokens, modulo n."""
    key = "".join(level_to_token(t) for t in device_tokens).encode()
    return fnv1a_32(key) % partitions


def device_partition(device_id: str, partitions: int) -> int:
    """The partition of a device publishing on its position topic."""
    return partition_of([device_id], partitions)


@dataclass(frozen=True, slots=True)
class Mapping:
    source: str  # the subject devices publish on (wildcards)
    destination: str  # its partitioned subject


# the device topics and which of their wildcard levels (1-based) name the device
KEYED_FILTERS: tuple[tuple[str, tuple[int, ...]], ...] = (
    (POSITION_FILTER, (1,)), (OWNTRACKS_FILTER, (1, 2)), (SCAN_FILTER, (1,)))


def mappings(prefix: str, partitions: int) -> list[Mapping]:
    """The subject mappings of nats-server's config for the device topics: the position
    and scan topics partitioned by their id's level, OwnTracks by user and device."""
    out = []
    for topic, keyed in KEYED_FILTERS:
        source = topic_to_subject(prefix + topic)
        destination_tokens, n = [], 0
        for token in source.split("."):
            if token == "*":
                n += 1
                token = f"{{{{wildcard({n})}}}}"
            destination_tokens.append(token)
        keys = ",".join(str(k) for k in keyed)  # the filter's own wildcards are the ids
        out.append(Mapping(
            source,
            f"{SUBJECT_ROOT}.{{{{partition({partitions},{keys})}}}}."
            + ".".join(destination_tokens)))
    return out


_BAD_TOKEN_CHARS = frozenset(" \t\r\n*>")


def partitioned_subject(topic: str, prefix: str, partitions: int) -> str | None:
    """The subject nats-server's mappings (:func:`mappings`) store an MQTT publish on
    ``topic`` under, ``shiptrack_in.<p>.<topic as a subject>``; None for a topic of no
    device filter, or whose levels make no subject (an empty level, a blank, ``*``,
    ``>``): such a topic names no device and has no partition."""
    if not topic.startswith(prefix):
        return None
    levels = topic[len(prefix):].split("/")
    for pattern, keyed in KEYED_FILTERS:
        parts = pattern.split("/")
        if len(parts) != len(levels):
            continue
        wild = [level for part, level in zip(parts, levels, strict=True) if part == "+"]
        if any(part != "+" and part != level
               for part, level in zip(parts, levels, strict=True)):
            continue
        if any(not level or _BAD_TOKEN_CHARS & set(level) for level in wild):
            return None
        if any(not level or _BAD_TOKEN_CHARS & set(level) for level in prefix.split("/")[:-1]):
            return None
        partition = partition_of([wild[k - 1] for k in keyed], partitions)
        return f"{SUBJECT_ROOT}.{partition}.{topic_to_subject(topic)}"
    return None


def _score(worker: str, partition: int) -> int:
    digest = hashlib.blake2b(f"{worker}\x00{partition}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def assign(partitions: int, workers: Iterable[str]) -> dict[int, str]:
    """Each partition's owner among ``workers`` (rendezvous hashing; empty: none)."""
    live = sorted(set(workers))
    if not live:
        return {}
    return {p: max(live, key=lambda w: (_score(w, p), w)) for p in range(partitions)}


def owned(worker: str, partitions: int, workers: Iterable[str]) -> set[int]:
    """The partitions ``worker`` should own when ``workers`` are live."""
    return {p for p, w in assign(partitions, workers).items() if w == worker}
