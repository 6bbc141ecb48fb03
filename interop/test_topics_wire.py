"""Requests that span many topics and partitions, sent to the real broker process with this
project's codec: Produce, Fetch, ListOffsets, DeleteRecords, OffsetForLeaderEpoch, OffsetCommit,
OffsetFetch and Metadata each answer every partition on its own, an unknown topic or partition
failing alone while the rest of the request succeeds."""

from __future__ import annotations

import uuid
from typing import Callable

import pytest

from interop.broker_process import BrokerProcess
from interop.clients import TOPIC, assert_broker_healthy
from protocol import records
from protocol.errors import ErrorCode
from tests.broker.wire_client import WireClient
from protocol.messages import ApiKey

LATEST, EARLIEST = -1, -2
# Metadata asks by name with the all-zero topic id.
NO_TOPIC_ID = uuid.UUID(int=0)
UNKNOWN = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
OUT_OF_RANGE = ErrorCode.OFFSET_OUT_OF_RANGE
INVALID_TOPIC = ErrorCode.INVALID_TOPIC_EXCEPTION
# One Produce request's worth: (topic, partition) -> values. Partition 7 and the last topic do not exist.
PLACEMENTS = {("wire-a", 0): [b"a0-0", b"a0-1"], ("wire-a", 1): [b"a1-0"], ("wire-a", 2): [b"a2-0", b"a2-1", b"a2-2"],
              ("wire-a", 7): [b"nowhere"], ("wire-b", 1): [b"b1-0"], ("wire-unknown", 0): [b"nowhere"]}


@pytest.fixture(scope="module")
def strict_broker(tmp_path_factory):
    """Without auto-creation, so that unknown topics stay unknown."""
    with BrokerProcess(tmp_path_factory.mktemp("wire") / "data", "--auto-create-topics", "false") as process:
        yield process
        assert_broker_healthy(process)


def by_topic(entries: dict[tuple[str, int], object], partitions_field: str,
             partition: Callable[[int, object], dict], name_field: str = "name") -> list[dict]:
    """A request's topics array: one element per topic, holding `partition(index, value)` for each entry."""
    topics: dict[str, list[dict]] = {}
    for (topic, index), value in entries.items():
        topics.setdefault(topic, []).append(partition(index, value))
    return [{name_field: topic, partitions_field: partitions} for topic, partitions in topics.items()]


def answers(topics, partitions_field: str, index_field: str, name_field: str = "name") -> dict[tuple[str, int], object]:
    """A response's per-partition answers by (topic, partition)."""
    return {(getattr(topic, name_field), getattr(partition, index_field)): partition
            for topic in topics for partition in getattr(topic, partitions_field)}


def values_of(record_set) -> list[bytes]:
    return [record.value for _, batch in records.iter_batches(bytes(record_set)) for record in records.iter_records(batch)]


async def produce(client: WireClient, placements: dict[tuple[str, int], list[bytes]]) -> dict:
    response = await client.request(ApiKey.PRODUCE, 9, {
        "transactional_id": None, "acks": -1, "timeout_ms": 5000,
        "topic_data": by_topic(placements, "partition_data", lambda index, values: {
            "index": index, "records": records.build_batch([records.Record(value=v) for v in values])})})
    return {key: (p.error_code, p.base_offset) for key, p in
            answers(response.responses, "partition_responses", "index").items()}


async def list_offsets(client: WireClient, wanted: dict[tuple[str, int], int]) -> dict:
    response = await client.request(ApiKey.LIST_OFFSETS, 7, {
        "replica_id": -1, "isolation_level": 0,
        "topics": by_topic(wanted, "partitions", lambda index, timestamp: {
            "partition_index": index, "current_leader_epoch": -1, "timestamp": timestamp})})
    return {key: (p.error_code, p.offset) for key, p in answers(response.topics, "partitions", "partition_index").items()}


async def test_many_topic_partitions_in_one_request_each_answered_on_its_own(strict_broker):
    client = await WireClient.connect(strict_broker.port)
    try:
        created = await client.request(ApiKey.CREATE_TOPICS, 7, {"timeout_ms": 5000, "validate_only": False, "topics": [
            {"name": name, "num_partitions": count, "replication_factor": -1, "assignments": [], "configs": []}
            for name, count in (("wire-a", 3), ("wire-b", 2))]})
        assert [(t.name, t.error_code, t.num_partitions) for t in created.topics] == [("wire-a", 0, 3), ("wire-b", 0, 2)]

        produced = await produce(client, PLACEMENTS)
        assert {key: error for key, (error, _) in produced.items()} == {
            ("wire-a", 0): 0, ("wire-a", 1): 0, ("wire-a", 2): 0, ("wire-a", 7): UNKNOWN, ("wire-b", 1): 0,
            ("wire-unknown", 0): UNKNOWN}
        assert {key: offset for key, (error, offset) in produced.items() if error == 0} == dict.fromkeys(
            [("wire-a", 0), ("wire-a", 1), ("wire-a", 2), ("wire-b", 1)], 0)

        # wire-b 0 is empty, so offset 1 is past its end.
        fetch_offsets = {("wire-a", i): 0 for i in range(4)} | {("wire-b", 0): 1, ("wire-b", 1): 0,
                                                                  ("wire-unknown", 0): 0}
        fetched = await client.request(ApiKey.FETCH, 12, {
            "replica_id": -1, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
            "topics": by_topic(fetch_offsets, "partitions", lambda index, offset: {
                "partition": index, "fetch_offset": offset, "partition_max_bytes": 1 << 20}, name_field="topic")})
        found = answers(fetched.responses, "partitions", "partition_index", name_field="topic")
        assert {key: (p.error_code, p.high_watermark, values_of(p.records) if p.error_code == 0 else None)
                for key, p in found.items()} == {
            ("wire-a", 0): (0, 2, PLACEMENTS[("wire-a", 0)]), ("wire-a", 1): (0, 1, PLACEMENTS[("wire-a", 1)]),
            ("wire-a", 2): (0, 3, PLACEMENTS[("wire-a", 2)]), ("wire-a", 3): (UNKNOWN, -1, None),
            ("wire-b", 0): (OUT_OF_RANGE, 0, None), ("wire-b", 1): (0, 1, PLACEMENTS[("wire-b", 1)]),
            ("wire-unknown", 0): (UNKNOWN, -1, None)}

        assert await list_offsets(client, {("wire-a", 0): LATEST, ("wire-a", 2): LATEST, ("wire-a", 9): LATEST,
                                           ("wire-b", 1): EARLIEST, ("wire-unknown", 0): EARLIEST}) == {
            ("wire-a", 0): (0, 2), ("wire-a", 2): (0, 3), ("wire-a", 9): (UNKNOWN, -1), ("wire-b", 1): (0, 0),
            ("wire-unknown", 0): (UNKNOWN, -1)}

        deletions = {("wire-a", 2): 1, ("wire-a", 9): 0, ("wire-b", 1): 5, ("wire-unknown", 0): 0}
        deleted = await client.request(ApiKey.DELETE_RECORDS, 2, {"timeout_ms": 5000, "topics": by_topic(
            deletions, "partitions", lambda index, offset: {"partition_index": index, "offset": offset})})
        assert {key: (p.error_code, p.low_watermark) for key, p in
                answers(deleted.topics, "partitions", "partition_index").items()} == {
            ("wire-a", 2): (0, 1), ("wire-a", 9): (UNKNOWN, -1), ("wire-b", 1): (OUT_OF_RANGE, -1),
            ("wire-unknown", 0): (UNKNOWN, -1)}
        assert await list_offsets(client, {("wire-a", 2): EARLIEST, ("wire-b", 1): EARLIEST}) == {
            ("wire-a", 2): (0, 1), ("wire-b", 1): (0, 0)}

        epochs = {("wire-a", i): 0 for i in range(4)} | {("wire-unknown", 0): 0}
        ends = await client.request(ApiKey.OFFSET_FOR_LEADER_EPOCH, 4, {"replica_id": -1, "topics": by_topic(
            epochs, "partitions", lambda index, epoch: {"partition": index, "current_leader_epoch": -1,
                                                        "leader_epoch": epoch}, name_field="topic")})
        assert {key: (p.error_code, p.end_offset) for key, p in
                answers(ends.topics, "partitions", "partition", name_field="topic").items()} == {
            ("wire-a", 0): (0, 2), ("wire-a", 1): (0, 1), ("wire-a", 2): (0, 3), ("wire-a", 3): (UNKNOWN, -1),
            ("wire-unknown", 0): (UNKNOWN, -1)}
    finally:
        await client.aclose()


async def test_offsets_of_many_partitions_committed_and_fetched_in_one_request(strict_broker):
    client = await WireClient.connect(strict_broker.port)
    try:
        commits = {("wire-a", 0): 2, ("wire-a", 2): 3, ("wire-a", 5): 1, ("wire-b", 1): 1, ("wire-unknown", 0): 4}
        committed = await client.request(ApiKey.OFFSET_COMMIT, 8, {
            "group_id": "wire-many", "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
            "topics": by_topic(commits, "partitions", lambda index, offset: {
                "partition_index": index, "committed_offset": offset, "committed_leader_epoch": -1,
                "committed_metadata": f"at {offset}"})})
        assert {key: p.error_code for key, p in answers(committed.topics, "partitions", "partition_index").items()} \
            == {("wire-a", 0): 0, ("wire-a", 2): 0, ("wire-a", 5): UNKNOWN, ("wire-b", 1): 0, ("wire-unknown", 0): UNKNOWN}

        fetched = await client.request(ApiKey.OFFSET_FETCH, 8, {"require_stable": False, "groups": [
            {"group_id": "wire-many", "topics": [{"name": "wire-a", "partition_indexes": [0, 1, 2]},
                                                 {"name": "wire-b", "partition_indexes": [1]}]},
            {"group_id": "wire-nobody", "topics": [{"name": "wire-a", "partition_indexes": [0]}]}]})
        assert [(group.group_id, group.error_code) for group in fetched.groups] == [("wire-many", 0), ("wire-nobody", 0)]
        assert {key: (p.error_code, p.committed_offset, p.metadata) for key, p in
                answers(fetched.groups[0].topics, "partitions", "partition_index").items()} == {
            ("wire-a", 0): (0, 2, "at 2"), ("wire-a", 1): (0, -1, ""), ("wire-a", 2): (0, 3, "at 3"),
            ("wire-b", 1): (0, 1, "at 1")}
        assert [p.committed_offset for p in fetched.groups[1].topics[0].partitions] == [-1]
    finally:
        await client.aclose()


async def test_metadata_answers_each_topic_and_creates_nothing_when_auto_creation_is_off(strict_broker):
    client = await WireClient.connect(strict_broker.port)
    try:
        response = await client.request(ApiKey.METADATA, 12, {
            "allow_auto_topic_creation": True, "include_topic_authorized_operations": False,
            "topics": [{"name": name, "topic_id": NO_TOPIC_ID} for name in (TOPIC, "wire-never", "wire-a", "wire bad!")]})
        assert [(t.name, t.error_code, len(t.partitions)) for t in response.topics] == \
            [(TOPIC, 0, 1), ("wire-never", UNKNOWN, 0), ("wire-a", 0, 3), ("wire bad!", INVALID_TOPIC, 0)]
        everything = await client.request(ApiKey.METADATA, 12, {
            "allow_auto_topic_creation": True, "include_topic_authorized_operations": False, "topics": None})
        assert "wire-never" not in {t.name for t in everything.topics}
    finally:
        await client.aclose()


@pytest.mark.parametrize("allow_auto_creation", [True, False])
async def test_metadata_names_an_invalid_topic_whether_or_not_it_may_create(shared_broker, allow_auto_creation):
    maybe = f"wire-maybe-{allow_auto_creation}"
    client = await WireClient.connect(shared_broker.port)
    try:
        response = await client.request(ApiKey.METADATA, 12, {
            "allow_auto_topic_creation": allow_auto_creation, "include_topic_authorized_operations": False,
            "topics": [{"name": name, "topic_id": NO_TOPIC_ID} for name in ("wire bad!", "..", maybe)]})
        assert [(t.name, t.error_code) for t in response.topics] == [
            ("wire bad!", INVALID_TOPIC), ("..", INVALID_TOPIC), (maybe, 0 if allow_auto_creation else UNKNOWN)]
    finally:
        await client.aclose()


async def test_a_produce_request_creates_its_new_topics(shared_broker):
    client = await WireClient.connect(shared_broker.port)
    try:
        produced = await produce(client, {("wire-fresh", 0): [b"fresh"], (TOPIC, 0): [b"old"],
                                          ("wire-fresh", 4): [b"beyond"]})
        # The topic is created with the default partition count, so partition 4 does not exist.
        assert {key: error for key, (error, _) in produced.items()} == {
            ("wire-fresh", 0): 0, (TOPIC, 0): 0, ("wire-fresh", 4): UNKNOWN}
        assert await list_offsets(client, {("wire-fresh", 0): LATEST}) == {("wire-fresh", 0): (0, 1)}
    finally:
        await client.aclose()
    assert_broker_healthy(shared_broker)
