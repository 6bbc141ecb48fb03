"""DeleteRecords (21): advance partitions' log start offsets, durably, before answering."""

from __future__ import annotations

from broker.handlers.base import answer_each_partition, handles
from broker.registry import Partition
from log import LogStorageError
from protocol.errors import ErrorCode

DELETE_RECORDS = 21
# Kafka's DeleteRecordsRequest.HIGH_WATERMARK: delete everything up to the high watermark.
HIGH_WATERMARK = -1


async def _answer(partition: Partition | None, wanted) -> dict:
    result = {"partition_index": wanted.partition_index, "low_watermark": -1, "error_code": ErrorCode.NONE}
    if partition is None:
        result["error_code"] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        return result
    log = partition.log
    offset = log.log_end_offset if wanted.offset == HIGH_WATERMARK else wanted.offset
    if not 0 <= offset <= log.log_end_offset:
        result["error_code"] = ErrorCode.OFFSET_OUT_OF_RANGE
        return result
    try:
        result["low_watermark"] = await partition.delete_records(offset)
    except LogStorageError:
        result["error_code"] = ErrorCode.KAFKA_STORAGE_ERROR
    return result


@handles(DELETE_RECORDS)
async def delete_records(broker, header, request) -> dict:
    return {"throttle_time_ms": 0, "topics": await answer_each_partition(broker, request.topics, _answer)}
