"""Produce (0): validate each partition's record batch, de-duplicate idempotent retries, append."""

from __future__ import annotations

import time

from broker.handlers.base import CloseConnection, handles
from broker.handlers.topics import auto_create
from broker.producer_state import NO_PRODUCER_ID
from broker.registry import Partition
from log import InvalidRecordBatchError, RecordBatchTooLargeError
from protocol import legacy, records
from protocol.errors import ErrorCode, ProtocolError

PRODUCE = 0
# Produce v3 introduced magic 2 record batches; earlier versions carry legacy message sets.
FIRST_MAGIC_2_VERSION = 3
_VALID_ACKS = (-1, 0, 1)


class Rejected(Exception):
    def __init__(self, error: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error = error


def _one_batch(partition: Partition, record_set, api_version: int):
    """The partition's single magic-2 record batch, checked the way Kafka's LogValidator does."""
    if record_set is None or len(record_set) == 0:
        raise Rejected(ErrorCode.INVALID_RECORD, "the record set is empty")
    if api_version < FIRST_MAGIC_2_VERSION:
        try:
            record_set = legacy.to_record_batch(record_set)
        except ProtocolError as exc:
            raise Rejected(ErrorCode.CORRUPT_MESSAGE, f"invalid legacy message set: {exc}") from exc
    try:
        magic = records.magic_of(record_set)
        if magic != records.MAGIC:
            raise Rejected(ErrorCode.INVALID_RECORD,
                           f"Produce v{api_version} must carry magic 2 record batches, not magic {magic}")
        header = records.read_batch_header(record_set)
    except ProtocolError as exc:
        raise Rejected(ErrorCode.CORRUPT_MESSAGE, str(exc)) from exc
    if header.size != len(record_set):
        raise Rejected(ErrorCode.INVALID_RECORD, "a partition must carry exactly one record batch")
    if len(record_set) > partition.topic.config.max_message_bytes:
        raise Rejected(ErrorCode.MESSAGE_TOO_LARGE,
                       f"batch of {len(record_set)} bytes is over max.message.bytes "
                       f"{partition.topic.config.max_message_bytes}")
    if header.records_count <= 0 or header.last_offset_delta != header.records_count - 1:
        raise Rejected(ErrorCode.INVALID_RECORD,
                       f"inconsistent batch: {header.records_count} records, last offset delta "
                       f"{header.last_offset_delta}")
    if header.is_control:
        raise Rejected(ErrorCode.INVALID_RECORD, "clients may not write control batches")
    if header.is_transactional:
        raise Rejected(ErrorCode.INVALID_RECORD, "this broker does not support transactions")
    try:
        records.validate_batch(record_set)
    except ProtocolError as exc:
        raise Rejected(ErrorCode.CORRUPT_MESSAGE, str(exc)) from exc
    return header, record_set


def _produce_to(broker, partition: Partition, record_set, api_version: int) -> dict:
    """Append one partition's batch; the partition's part of the Produce response."""
    header, batch = _one_batch(partition, record_set, api_version)
    log = partition.log
    check = partition.producers.check(header.producer_id, header.producer_epoch,
                                      header.base_sequence, header.last_offset_delta)
    if check.duplicate is not None:
        return {"base_offset": check.duplicate.base_offset, "log_append_time_ms": -1}
    if check.error != ErrorCode.NONE:
        raise Rejected(check.error, f"producer {header.producer_id} epoch {header.producer_epoch} "
                                    f"sequence {header.base_sequence} rejected")
    log_append_time = -1
    if partition.topic.config.message_timestamp_type == "LogAppendTime":
        log_append_time = int(time.time() * 1000)
        batch = bytearray(batch)
        records.set_log_append_time(batch, log_append_time)
    try:
        appended = log.append(batch)
    except InvalidRecordBatchError as exc:
        raise Rejected(ErrorCode.CORRUPT_MESSAGE, str(exc)) from exc
    except RecordBatchTooLargeError as exc:
        raise Rejected(ErrorCode.RECORD_LIST_TOO_LARGE, str(exc)) from exc
    if header.producer_id != NO_PRODUCER_ID:
        partition.producers.record(header.producer_id, header.producer_epoch, header.base_sequence,
                                   appended.base_offset, appended.last_offset, header.max_timestamp)
    broker.appended(partition)
    return {"base_offset": appended.base_offset, "log_append_time_ms": log_append_time}


def _partition(broker, topic_name: str, index: int) -> Partition | None:
    """The partition produced to; an unknown topic is auto-created when the broker allows it."""
    partition = broker.registry.partition(topic_name, index)
    if partition is None and broker.config.auto_create_topics and topic_name not in broker.registry.topics:
        auto_create(broker, topic_name)
        partition = broker.registry.partition(topic_name, index)
    return partition


@handles(PRODUCE)
async def produce(broker, header, request) -> dict | None:
    acks = request.acks
    responses = []
    written: list[Partition] = []
    failed = False
    for topic_data in request.topic_data:
        partition_responses = []
        for partition_data in topic_data.partition_data:
            partition = _partition(broker, topic_data.name, partition_data.index)
            response = {"index": partition_data.index, "error_code": ErrorCode.NONE, "base_offset": -1,
                        "log_append_time_ms": -1, "log_start_offset": -1, "record_errors": [],
                        "error_message": None}
            try:
                if acks not in _VALID_ACKS:
                    raise Rejected(ErrorCode.INVALID_REQUIRED_ACKS, f"acks must be -1, 0 or 1, not {acks}")
                if partition is None:
                    raise Rejected(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                   f"unknown topic-partition {topic_data.name}-{partition_data.index}")
                if acks == -1 and partition.topic.config.min_insync_replicas > 1:
                    # One broker is one in-sync replica: acks=all cannot meet a higher minimum.
                    raise Rejected(ErrorCode.NOT_ENOUGH_REPLICAS,
                                   f"min.insync.replicas is {partition.topic.config.min_insync_replicas}, "
                                   f"but this broker is the only replica")
                response.update(_produce_to(broker, partition, partition_data.records, header.request_api_version))
                response["log_start_offset"] = partition.log.log_start_offset
                written.append(partition)
            except Rejected as exc:
                failed = True
                response["error_code"] = exc.error
                response["error_message"] = str(exc)
            partition_responses.append(response)
        responses.append({"name": topic_data.name, "partition_responses": partition_responses})
    if acks == 0:
        if failed:
            # acks=0 gets no response; as in Kafka, closing the connection is how the producer learns.
            raise CloseConnection("acks=0 produce request failed")
        return None
    if acks == -1 and broker.config.flush_on_ack:
        for partition in written:
            await partition.flush_to(partition.log.log_end_offset)
    return {"responses": responses, "throttle_time_ms": 0}
