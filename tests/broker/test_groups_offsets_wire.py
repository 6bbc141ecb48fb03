"""OffsetFetch on the wire while a transaction holds offsets of the group: the committed offset is
served, and with require_stable (v7+) the partition answers UNSTABLE_OFFSET_COMMIT, as Kafka's."""

from __future__ import annotations

import pytest

from broker.groups import OffsetAndMetadata
from protocol.errors import ErrorCode
from protocol.messages import REQUESTS, ApiKey

GROUP = "stable-group"
TOPIC = "t"
_FETCH = REQUESTS[ApiKey.OFFSET_FETCH]


async def fetch_v7(client, require_stable: bool, partitions=(0, 1)) -> list[tuple[int, int, int]]:
    """(partition, committed offset, error code) of the group's partitions of TOPIC."""
    response = await client.request(ApiKey.OFFSET_FETCH, 7, _FETCH(
        group_id=GROUP, topics=[_FETCH.OffsetFetchRequestTopic(name=TOPIC, partition_indexes=list(partitions))],
        require_stable=require_stable))
    assert response.error_code == ErrorCode.NONE
    (topic,) = response.topics
    return [(p.partition_index, p.committed_offset, p.error_code) for p in topic.partitions]


async def fetch_v8(client, require_stable: bool) -> list[tuple[int, int, int]]:
    """The same as fetch_v7, for all the group's committed partitions (null topics), v8's groups."""
    response = await client.request(ApiKey.OFFSET_FETCH, 8, _FETCH(
        groups=[_FETCH.OffsetFetchRequestGroup(group_id=GROUP, topics=None)], require_stable=require_stable))
    (group,) = response.groups
    assert group.error_code == ErrorCode.NONE
    return [(p.partition_index, p.committed_offset, p.error_code) for topic in group.topics for p in topic.partitions]


@pytest.fixture
async def pending(broker):
    """GROUP has offset 5 committed for TOPIC-0, and a transaction holds 9 for TOPIC-0 and TOPIC-1."""
    coordinator = broker.coordinator
    await coordinator.commit_offsets(GROUP, -1, "", None, {(TOPIC, 0): OffsetAndMetadata(5, -1, "", 0)})
    pending = {(TOPIC, index): OffsetAndMetadata(9, -1, "", 0) for index in (0, 1)}
    await coordinator.commit_transactional_offsets(GROUP, -1, "", None, 4000, 0, pending)
    return coordinator


async def test_require_stable_answers_unstable_for_pending_partitions_until_the_commit(pending, client):
    unstable = ErrorCode.UNSTABLE_OFFSET_COMMIT
    assert await fetch_v7(client, require_stable=False) == [(0, 5, 0), (1, -1, 0)]
    assert await fetch_v7(client, require_stable=True) == [(0, -1, unstable), (1, -1, unstable)]
    # All the group's offsets: those committed, of which TOPIC-0 has a pending one.
    assert await fetch_v8(client, require_stable=True) == [(0, -1, unstable)]
    assert await fetch_v8(client, require_stable=False) == [(0, 5, 0)]
    await pending.complete_transaction(4000, 0, True)
    assert await fetch_v7(client, require_stable=True) == [(0, 9, 0), (1, 9, 0)]


async def test_before_v7_the_committed_offset_is_served(pending, client):
    response = await client.request(ApiKey.OFFSET_FETCH, 6, _FETCH(
        group_id=GROUP, topics=[_FETCH.OffsetFetchRequestTopic(name=TOPIC, partition_indexes=[0])]))
    assert [(p.committed_offset, p.error_code) for p in response.topics[0].partitions] == [(5, 0)]
