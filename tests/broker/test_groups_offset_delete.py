"""OffsetDelete (47) on the wire, against a broker served in the test: Kafka's answers for an empty
group, a group whose consumers subscribe to the topic, other groups with members, unknown
partitions and groups; and ApiVersions advertising it."""

from __future__ import annotations

import struct

from protocol.errors import ErrorCode
from protocol.messages import REQUESTS, ApiKey

TOPIC = "comlog"  # created by the broker at start
_COMMIT = REQUESTS[ApiKey.OFFSET_COMMIT]
_JOIN = REQUESTS[ApiKey.JOIN_GROUP]
_DELETE = REQUESTS[ApiKey.OFFSET_DELETE]


def consumer_subscription(*topics: str) -> bytes:
    """A consumer's protocol metadata: ConsumerProtocolSubscription v0 after its int16 version."""
    body = struct.pack(">hi", 0, len(topics)) + b"".join(struct.pack(">h", len(t)) + t.encode() for t in topics)
    return body + struct.pack(">i", -1)  # null user data


async def commit(client, group: str, partitions: list[int]) -> None:
    response = await client.request(ApiKey.OFFSET_COMMIT, 8, _COMMIT(group_id=group, topics=[
        _COMMIT.OffsetCommitRequestTopic(name=TOPIC, partitions=[
            _COMMIT.OffsetCommitRequestPartition(partition_index=p, committed_offset=1) for p in partitions])]))
    assert {p.error_code for t in response.topics for p in t.partitions} == {ErrorCode.NONE}


async def join(client, group: str, protocol_type: str, metadata: bytes) -> None:
    """One member joins `group` (JoinGroup v3: no member id round trip) and forms generation 1."""
    response = await client.request(ApiKey.JOIN_GROUP, 3, _JOIN(
        group_id=group, session_timeout_ms=30_000, rebalance_timeout_ms=30_000, member_id="",
        protocol_type=protocol_type, protocols=[_JOIN.JoinGroupRequestProtocol(name="range", metadata=metadata)]))
    assert (response.error_code, response.generation_id) == (ErrorCode.NONE, 1)


async def delete(client, group: str, wanted: dict[str, list[int]]):
    return await client.request(ApiKey.OFFSET_DELETE, 0, _DELETE(group_id=group, topics=[
        _DELETE.OffsetDeleteRequestTopic(name=name, partitions=[
            _DELETE.OffsetDeleteRequestPartition(partition_index=p) for p in partitions])
        for name, partitions in wanted.items()]))


def errors(response) -> dict[tuple[str, int], ErrorCode]:
    return {(t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions}


async def test_an_empty_groups_offsets_are_deleted_and_unknown_partitions_named(client):
    await commit(client, "empty", [0])
    deleted = await delete(client, "empty", {TOPIC: [0, 7], "no-such-topic": [0]})
    assert deleted.error_code == ErrorCode.NONE
    assert errors(deleted) == {(TOPIC, 0): ErrorCode.NONE, (TOPIC, 7): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                               ("no-such-topic", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    # Left without offsets, the empty group is gone, as after Kafka's offset clean-up.
    gone = await delete(client, "empty", {TOPIC: [0]})
    assert (gone.error_code, gone.topics) == (ErrorCode.GROUP_ID_NOT_FOUND, [])


async def test_a_consumer_group_keeps_the_offsets_of_topics_its_members_subscribe_to(broker, client):
    await broker.topics.create("other", 1, 1, [], {})
    await commit(client, "consuming", [0])
    await join(client, "consuming", "consumer", consumer_subscription(TOPIC))
    deleted = await delete(client, "consuming", {TOPIC: [0], "other": [0]})
    assert errors(deleted) == {(TOPIC, 0): ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC, ("other", 0): ErrorCode.NONE}


async def test_groups_kafka_refuses_as_a_whole(client):
    await join(client, "connect-like", "connect", b"opaque")
    refused = {group: (await delete(client, group, {TOPIC: [0]})).error_code
               for group in ("connect-like", "never-seen", "")}
    assert refused == {"connect-like": ErrorCode.NON_EMPTY_GROUP, "never-seen": ErrorCode.GROUP_ID_NOT_FOUND,
                       "": ErrorCode.INVALID_GROUP_ID}


async def test_api_versions_advertises_offset_delete(client):
    versions = await client.request(ApiKey.API_VERSIONS, 3, REQUESTS[ApiKey.API_VERSIONS](
        client_software_name="t", client_software_version="1"))
    assert [(k.min_version, k.max_version) for k in versions.api_keys if k.api_key == ApiKey.OFFSET_DELETE] == [(0, 0)]
