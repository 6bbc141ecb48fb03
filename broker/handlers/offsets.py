"""OffsetCommit (8) and OffsetFetch (9): committed offsets, stored by the group coordinator."""

from __future__ import annotations

import time

from broker.groups import OffsetAndMetadata
from broker.handlers.base import handles
from protocol.errors import ErrorCode

OFFSET_COMMIT = 8
OFFSET_FETCH = 9
# OffsetCommit v1 alone carries a commit timestamp per partition (-1: the broker's time).
COMMIT_TIMESTAMP_VERSION = 1
# OffsetFetch v2 answers "every committed offset" for null topics, and has a group-level error;
# v8 fetches several groups at once.
FIRST_GROUP_ERROR_VERSION = 2
FIRST_MULTI_GROUP_VERSION = 8
NO_OFFSET = -1
NO_LEADER_EPOCH = -1
NO_METADATA = ""


@handles(OFFSET_COMMIT)
async def offset_commit(broker, header, request) -> dict:
    now = int(time.time() * 1000)
    offsets = {}
    errors = {}
    for topic in request.topics:
        for partition in topic.partitions:
            key = (topic.name, partition.partition_index)
            if broker.registry.partition(*key) is None:
                errors[key] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            timestamp = partition.get("commit_timestamp", -1)
            if header.request_api_version != COMMIT_TIMESTAMP_VERSION or timestamp == -1:
                timestamp = now
            offsets[key] = OffsetAndMetadata(partition.committed_offset, partition.get("committed_leader_epoch", -1),
                                             partition.committed_metadata or NO_METADATA, timestamp)
    if offsets:
        errors.update(await broker.coordinator.commit_offsets(
            request.group_id, request.get("generation_id_or_member_epoch", -1), request.get("member_id", ""),
            request.get("group_instance_id"), offsets))
    return {"throttle_time_ms": 0, "topics": [
        {"name": topic.name, "partitions": [
            {"partition_index": p.partition_index, "error_code": errors[(topic.name, p.partition_index)]}
            for p in topic.partitions]}
        for topic in request.topics]}


def _fetched_topics(broker, group_id: str, wanted_topics, partition_error_too: bool) -> tuple[ErrorCode, list[dict]]:
    """One group's committed offsets of `wanted_topics` (None: all of them), as response topics."""
    if wanted_topics is None:
        wanted = None
    else:
        wanted = [(topic.name, index) for topic in wanted_topics for index in topic.partition_indexes]
    error, committed = broker.coordinator.fetch_offsets(group_id, wanted)
    topics: dict[str, list[dict]] = {}
    for (name, index) in (wanted if wanted is not None else sorted(committed)):
        value = committed.get((name, index))
        topics.setdefault(name, []).append({
            "partition_index": index,
            "committed_offset": value.offset if value else NO_OFFSET,
            "committed_leader_epoch": value.leader_epoch if value else NO_LEADER_EPOCH,
            "metadata": value.metadata if value else NO_METADATA,
            # Before v2 only partitions could carry the group's error.
            "error_code": error if partition_error_too else ErrorCode.NONE,
        })
    return error, [{"name": name, "partitions": partitions} for name, partitions in topics.items()]


@handles(OFFSET_FETCH)
async def offset_fetch(broker, header, request) -> dict:
    version = header.request_api_version
    if version >= FIRST_MULTI_GROUP_VERSION:
        groups = []
        for group in request.groups:
            error, topics = _fetched_topics(broker, group.group_id, group.topics, False)
            groups.append({"group_id": group.group_id, "topics": topics, "error_code": error})
        return {"throttle_time_ms": 0, "groups": groups}
    error, topics = _fetched_topics(broker, request.group_id, request.topics, version < FIRST_GROUP_ERROR_VERSION)
    return {"throttle_time_ms": 0, "topics": topics, "error_code": error}
