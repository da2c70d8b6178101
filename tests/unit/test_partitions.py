"""Partitions of the device ids: nats-server's hash, the topic/subject mapping, and the
rendezvous assignment (a join or leave moves only the partitions it must)."""

from __future__ import annotations

from shiptrack.partitions import (
    assign,
    device_partition,
    fnv1a_32,
    mappings,
    owned,
    partition_of,
    partitioned_subject,
    split_partitioned,
    subject_to_topic,
    topic_to_subject,
)


def test_fnv1a_32_known_values() -> None:
    assert fnv1a_32(b"") == 0x811C9DC5
    assert fnv1a_32(b"a") == 0xE40C292C
    assert fnv1a_32(b"foobar") == 0xBF9CF968


def test_a_dot_in_a_device_id_is_one_token() -> None:
    topic = "t/shiptrack/v1/devices/dev.1/position"
    assert topic_to_subject(topic) == "t.shiptrack.v1.devices.dev//1.position"
    assert subject_to_topic(topic_to_subject(topic)) == topic
    assert split_partitioned("shiptrack_in.7.t.shiptrack.v1.devices.dev//1.position") == (
        7, topic)
    assert device_partition("dev.1", 64) == fnv1a_32(b"dev//1") % 64
    assert partition_of(["al.ice", "phone"], 8) == fnv1a_32(b"al//icephone") % 8


def test_mappings_partition_each_kind_of_topic_by_its_ids() -> None:
    got = {m.source: m.destination for m in mappings("p1/", 64)}
    assert got["p1.shiptrack.v1.devices.*.position"] == (
        "shiptrack_in.{{partition(64,1)}}.p1.shiptrack.v1.devices.{{wildcard(1)}}.position")
    assert got["p1.owntracks.*.*"] == (
        "shiptrack_in.{{partition(64,1,2)}}.p1.owntracks.{{wildcard(1)}}.{{wildcard(2)}}")
    assert "p1.shiptrack.v1.scanners.*.scan" in got


def test_assignment_covers_every_partition_once_and_is_deterministic() -> None:
    one = assign(64, ["b", "a", "c"])
    assert sorted(one) == list(range(64)) and set(one.values()) == {"a", "b", "c"}
    assert one == assign(64, ["c", "a", "b", "a"])
    assert assign(64, []) == {}


def test_a_join_moves_only_partitions_to_the_newcomer_and_a_leave_only_its_own() -> None:
    before = assign(128, ["w1", "w2"])
    after = assign(128, ["w1", "w2", "w3"])
    moved = {p for p in before if before[p] != after[p]}
    assert moved == owned("w3", 128, ["w1", "w2", "w3"])
    assert 20 < len(moved) < 65  # about a third
    gone = assign(128, ["w1", "w3"])
    assert {p for p in after if after[p] != gone[p]} == {
        p for p, w in after.items() if w == "w2"}


def test_partitioned_subject_is_the_servers_mapping_of_a_device_topic() -> None:
    p = device_partition("dev.1", 16)
    assert partitioned_subject("t/shiptrack/v1/devices/dev.1/position", "t/", 16) == (
        f"shiptrack_in.{p}.t.shiptrack.v1.devices.dev//1.position")
    owntracks = partition_of(["alice", "phone"], 16)
    assert partitioned_subject("owntracks/alice/phone", "", 16) == (
        f"shiptrack_in.{owntracks}.owntracks.alice.phone")
    scanner = device_partition("sc-1", 16)
    assert partitioned_subject("shiptrack/v1/scanners/sc-1/scan", "", 16) == (
        f"shiptrack_in.{scanner}.shiptrack.v1.scanners.sc-1.scan")


def test_a_topic_that_names_no_device_has_no_partitioned_subject() -> None:
    for topic in ("t/shiptrack/v1/devices//position", "t/shiptrack/v1/devices/a b/position",
                  "t/shiptrack/v1/devices/a*/position", "t/shiptrack/v1/devices/>/position",
                  "t/shiptrack/v1/devices/x/other", "other/shiptrack/v1/devices/x/position",
                  "t/owntracks/alice"):
        assert partitioned_subject(topic, "t/", 16) is None, topic
