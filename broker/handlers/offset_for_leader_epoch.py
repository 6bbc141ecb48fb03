"""OffsetForLeaderEpoch (23): the end offset of a leader epoch; here there is only epoch 0."""

from __future__ import annotations

from broker.acls import ResourceType, authorized, authorized_names
from broker.authorized_operations import AclOperation
from broker.handlers.base import Services, answer_each_partition, handles
from broker.registry import LEADER_EPOCH, Partition
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.fetch import OFFSET_FOR_LEADER_EPOCH_RESPONSE

UNDEFINED_EPOCH = -1
UNDEFINED_OFFSET = -1
# Clients send -1 when they do not know the current leader epoch.
NO_EPOCH_CHECK = -1


async def _answer(partition: Partition, wanted) -> dict:
    current_leader_epoch = wanted.get("current_leader_epoch", NO_EPOCH_CHECK)
    if current_leader_epoch != NO_EPOCH_CHECK and current_leader_epoch < LEADER_EPOCH:
        raise ApiError(ErrorCode.FENCED_LEADER_EPOCH)
    if current_leader_epoch > LEADER_EPOCH:
        raise ApiError(ErrorCode.UNKNOWN_LEADER_EPOCH)
    if wanted.leader_epoch > LEADER_EPOCH:
        # An epoch newer than the leader's is not known yet (Kafka's UNDEFINED_EPOCH_OFFSET).
        return {"leader_epoch": UNDEFINED_EPOCH, "end_offset": UNDEFINED_OFFSET}
    # Epoch 0 has lasted from the start, so it (and any epoch before it) ends at the log end.
    return {"leader_epoch": LEADER_EPOCH, "end_offset": partition.log.log_end_offset}


@handles(ApiKey.OFFSET_FOR_LEADER_EPOCH)
async def offset_for_leader_epoch(broker: Services, header, request):
    # A follower's API first (CLUSTER_ACTION), which consumers use too since KIP-320 (DESCRIBE).
    denied: set[str] = set()
    if not authorized(broker.authorizer, AclOperation.CLUSTER_ACTION, ResourceType.CLUSTER):
        names = [topic.topic for topic in request.topics]
        denied = set(names) - authorized_names(broker.authorizer, AclOperation.DESCRIBE, ResourceType.TOPIC, names)
    return OFFSET_FOR_LEADER_EPOCH_RESPONSE(topics=await answer_each_partition(
        broker, request.topics, OFFSET_FOR_LEADER_EPOCH_RESPONSE.OffsetForLeaderTopicResult,
        OFFSET_FOR_LEADER_EPOCH_RESPONSE.EpochEndOffset, _answer, topic_field="topic", partition_field="partition",
        denied=denied))
