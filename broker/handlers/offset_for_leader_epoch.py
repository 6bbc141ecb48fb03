"""OffsetForLeaderEpoch (23): the end offset of a leader epoch; here there is only epoch 0."""

from __future__ import annotations

from broker.handlers.base import answer_each_partition, handles
from broker.registry import LEADER_EPOCH, Partition
from protocol.errors import ErrorCode

OFFSET_FOR_LEADER_EPOCH = 23
UNDEFINED_EPOCH = -1
UNDEFINED_OFFSET = -1
# Clients send -1 when they do not know the current leader epoch.
NO_EPOCH_CHECK = -1


def _end_offset(partition, current_leader_epoch: int, leader_epoch: int) -> dict:
    if current_leader_epoch != NO_EPOCH_CHECK and current_leader_epoch < LEADER_EPOCH:
        return {"error_code": ErrorCode.FENCED_LEADER_EPOCH}
    if current_leader_epoch > LEADER_EPOCH:
        return {"error_code": ErrorCode.UNKNOWN_LEADER_EPOCH}
    if leader_epoch > LEADER_EPOCH:
        # An epoch newer than the leader's is not known yet (Kafka's UNDEFINED_EPOCH_OFFSET).
        return {"leader_epoch": UNDEFINED_EPOCH, "end_offset": UNDEFINED_OFFSET}
    # Epoch 0 has lasted from the start, so it (and any epoch before it) ends at the log end.
    return {"leader_epoch": LEADER_EPOCH, "end_offset": partition.log.log_end_offset}


async def _answer(partition: Partition | None, wanted) -> dict:
    result = {"error_code": ErrorCode.NONE, "partition": wanted.partition,
              "leader_epoch": UNDEFINED_EPOCH, "end_offset": UNDEFINED_OFFSET}
    if partition is None:
        result["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    else:
        result.update(_end_offset(partition, wanted.get("current_leader_epoch", NO_EPOCH_CHECK), wanted.leader_epoch))
    return result


@handles(OFFSET_FOR_LEADER_EPOCH)
async def offset_for_leader_epoch(broker, header, request) -> dict:
    topics = await answer_each_partition(broker, request.topics, _answer, topic_field="topic", partition_field="partition")
    return {"throttle_time_ms": 0, "topics": topics}
