"""DeleteRecords (21): advance partitions' log start offsets, durably, before answering."""

from __future__ import annotations

import functools

from broker.acls import ResourceType, authorized_names
from broker.authorized_operations import AclOperation
from broker.handlers.base import Services, answer_each_partition, handles
from broker.registry import Partition
from log import LogStorageError
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.admin import DELETE_RECORDS_RESPONSE

# Kafka's DeleteRecordsRequest.HIGH_WATERMARK: delete everything up to the high watermark.
HIGH_WATERMARK = -1
# Kafka's DeleteRecordsResponse.INVALID_LOW_WATERMARK, answered with every error.
INVALID_LOW_WATERMARK = -1


async def _answer(broker: Services, partition: Partition, wanted) -> dict:
    log = partition.log
    offset = log.log_end_offset if wanted.offset == HIGH_WATERMARK else wanted.offset
    if not 0 <= offset <= log.log_end_offset:
        raise ApiError(ErrorCode.OFFSET_OUT_OF_RANGE)
    try:
        low_watermark = await partition.delete_records(offset)
    except LogStorageError as exc:
        raise ApiError(ErrorCode.KAFKA_STORAGE_ERROR) from exc
    broker.partition_changed(partition)
    return {"low_watermark": low_watermark}


@handles(ApiKey.DELETE_RECORDS)
async def delete_records(broker: Services, header, request):
    names = [topic.name for topic in request.topics]
    denied = set(names) - authorized_names(broker.authorizer, AclOperation.DELETE, ResourceType.TOPIC, names)
    return DELETE_RECORDS_RESPONSE(topics=await answer_each_partition(
        broker, request.topics, DELETE_RECORDS_RESPONSE.DeleteRecordsTopicResult,
        DELETE_RECORDS_RESPONSE.DeleteRecordsPartitionResult, functools.partial(_answer, broker),
        failed={"low_watermark": INVALID_LOW_WATERMARK}, denied=denied))
