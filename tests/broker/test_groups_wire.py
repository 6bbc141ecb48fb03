"""The classic group protocol on the wire, against a broker served in the test: what a client sees
on its connections when it sends a JoinGroup again while its first one waits, as Kafka answers it.

Requests on other connections are ordered with trio.testing.wait_all_tasks_blocked: the broker runs
in the test's trio run, so once every task is blocked it has read the request and parked it."""

from __future__ import annotations

import trio.testing

from protocol.errors import ErrorCode
from protocol.messages import REQUESTS, ApiKey
from wire_client import WireClient

GROUP = "wire-group"
_JOIN = REQUESTS[ApiKey.JOIN_GROUP]
_SYNC = REQUESTS[ApiKey.SYNC_GROUP]
JOIN_VERSION = 5  # librdkafka's: KIP-394's member id round trip


def join_request(member_id: str, metadata: bytes = b"m") -> dict:
    return _JOIN(group_id=GROUP, session_timeout_ms=30_000, rebalance_timeout_ms=60_000, member_id=member_id,
                 protocol_type="consumer", protocols=[_JOIN.JoinGroupRequestProtocol(name="range", metadata=metadata)])


async def member_id(client: WireClient) -> str:
    response = await client.request(ApiKey.JOIN_GROUP, JOIN_VERSION, join_request(""))
    assert response.error_code == ErrorCode.MEMBER_ID_REQUIRED
    return response.member_id


async def test_a_joingroup_sent_again_on_another_connection_answers_the_first_not_coordinator(broker):
    leader, first, second = [await WireClient.connect(broker.port) for _ in range(3)]
    try:
        leader_id = await member_id(leader)
        joined = await leader.request(ApiKey.JOIN_GROUP, JOIN_VERSION, join_request(leader_id))
        assert (joined.error_code, joined.generation_id) == (ErrorCode.NONE, 1)
        synced = await leader.request(ApiKey.SYNC_GROUP, 3, _SYNC(
            group_id=GROUP, generation_id=1, member_id=leader_id,
            assignments=[_SYNC.SyncGroupRequestAssignment(member_id=leader_id, assignment=b"a")]))
        assert synced.error_code == ErrorCode.NONE

        follower_id = await member_id(first)
        older = await first.send(ApiKey.JOIN_GROUP, JOIN_VERSION, join_request(follower_id))
        await trio.testing.wait_all_tasks_blocked()
        assert broker.coordinator.groups[GROUP].members[follower_id].awaiting_join is not None
        # The same member again, from another connection (a client that gave the first one up).
        await second.send(ApiKey.JOIN_GROUP, JOIN_VERSION, join_request(follower_id))
        await trio.testing.wait_all_tasks_blocked()

        # The leader rejoins: generation 2 forms, with the follower in it once.
        rejoined = await leader.request(ApiKey.JOIN_GROUP, JOIN_VERSION, join_request(leader_id))
        assert rejoined.generation_id == 2
        assert sorted(m.member_id for m in rejoined.members) == sorted([leader_id, follower_id])
        header, newer = await second.receive()
        assert (newer.error_code, newer.generation_id, newer.member_id) == (ErrorCode.NONE, 2, follower_id)

        # The first connection's JoinGroup was answered when the second replaced it (as Kafka does
        # since KAFKA-20938), so the client rediscovers its coordinator instead of waiting it out.
        header, superseded = await first.receive()
        assert header.correlation_id == older
        assert (superseded.error_code, superseded.member_id) == (ErrorCode.NOT_COORDINATOR, follower_id)
    finally:
        for client in (leader, first, second):
            await client.aclose()


async def test_describe_groups_shows_each_members_client_host_as_kafka_does(broker):
    client = await WireClient.connect(broker.port)
    try:
        joined = await client.request(ApiKey.JOIN_GROUP, JOIN_VERSION, join_request(await member_id(client)))
        assert joined.error_code == ErrorCode.NONE
        described = await client.request(ApiKey.DESCRIBE_GROUPS, 5, {"groups": [GROUP],
                                                                     "include_authorized_operations": False})
        [group] = described.groups
        assert [(m.member_id, m.client_host) for m in group.members] == [(joined.member_id, "/127.0.0.1")]
    finally:
        await client.aclose()
