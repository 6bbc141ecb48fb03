"""Produce (0): validate each partition's record batch, verify a transactional one with the transaction
coordinator, de-duplicate idempotent retries, append."""

from __future__ import annotations

import logging

import trio

from broker.handlers.base import CloseConnection, Services, error_fields, handles
from broker.producer_state import NO_PRODUCER_ID
from broker.registry import Partition
from log import LogStorageError, RecordBatchTooLargeError
from protocol import legacy, record_batch, records
from protocol.errors import ApiError, CorruptRecordError, ErrorCode, ProtocolError
from protocol.messages import ApiKey
from protocol.messages.produce import PRODUCE_RESPONSE

logger = logging.getLogger(__name__)

_PartitionProduceResponse = PRODUCE_RESPONSE.PartitionProduceResponse
# Produce v3 introduced magic 2 record batches; earlier versions carry legacy message sets.
FIRST_MAGIC_2_VERSION = 3
_VALID_ACKS = (-1, 0, 1)
# The records of a compressed batch are decompressed and walked in a worker thread, one batch at
# a time broker-wide: clients sending compression bombs at once then hold one decompression
# buffer (at most records.DEFAULT_MAX_DECOMPRESSED_SIZE) between them, not one each.
_RECORDS_WORKER = trio.CapacityLimiter(1)
# An uncompressed batch is walked on the event loop (about half a microsecond a record) unless
# it holds more records than this: a 1 MiB batch of the smallest records would hold the loop
# for some 100 ms.
_MAX_RECORDS_ON_LOOP = 20_000


class Rejected(ApiError):
    """A partition's batch refused, and the record at fault when there is one (Kafka's
    RecordValidationException, whose record errors ProduceResponse v8+ reports)."""

    def __init__(self, code: ErrorCode, message: str, batch_index: int | None = None) -> None:
        super().__init__(code, message)
        self.batch_index = batch_index


def _one_batch(partition: Partition, record_set, api_version: int):
    """The partition's single magic-2 record batch and its header, checked the way Kafka's
    LogValidator does; not its CRC yet (_verify_crc)."""
    if record_set is None or len(record_set) == 0:
        raise Rejected(ErrorCode.INVALID_RECORD, "the record set is empty")
    if api_version < FIRST_MAGIC_2_VERSION:
        try:
            record_set = legacy.to_record_batch(record_set)
        except ProtocolError as exc:
            raise Rejected(ErrorCode.CORRUPT_MESSAGE, f"invalid legacy message set: {exc}") from exc
    try:
        header = record_batch.parse_header(record_set)
        records.compression_of(header.attributes)  # an unknown codec id makes the batch corrupt
    except CorruptRecordError as exc:
        # CORRUPT_MESSAGE, but INVALID_RECORD for another magic: Produce v3+ carry magic 2 only.
        raise Rejected(exc.error_code, str(exc)) from exc
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
    return header, record_set


def _verify_crc(header: record_batch.BatchHeader, batch) -> None:
    try:
        record_batch.verify_crc(batch, header)
    except CorruptRecordError as exc:
        raise Rejected(ErrorCode.CORRUPT_MESSAGE, str(exc)) from exc


def _records_fault(header: record_batch.BatchHeader, batch) -> tuple[ErrorCode, str, int | None] | None:
    """Why the batch's records are refused (code, message, record at fault), or None. Plain values,
    not the exception: its traceback holds the decompressed records (up to 64 MiB), which a
    reference cycle in the thread hand-off would keep alive until the next garbage collection."""
    try:
        records.validate_records(header, batch)
    except records.InvalidRecordError as exc:
        return exc.error_code, str(exc), exc.batch_index
    except CorruptRecordError as exc:
        return exc.error_code, str(exc), None
    return None


async def _validate_records(header: record_batch.BatchHeader, batch) -> None:
    """Reject a batch whose records do not parse as its header says, as Kafka's LogValidator does."""
    if not header.is_compressed and header.records_count <= _MAX_RECORDS_ON_LOOP:
        fault = _records_fault(header, batch)
    else:
        fault = await trio.to_thread.run_sync(_records_fault, header, batch, limiter=_RECORDS_WORKER)
    if fault is not None:
        raise Rejected(*fault)


async def _verify_transaction(broker, partition: Partition, header: record_batch.BatchHeader,
                              transactional_id: str | None) -> None:
    """Refuse a transactional batch whose producer's ongoing transaction does not hold the partition
    (KIP-890 part 1), so that a late or misdirected write cannot open a transaction the coordinator
    knows nothing of. Once the transaction has a batch here, its marker is what ends it."""
    if transactional_id is None:
        raise Rejected(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "transactional records need a transactional id")
    producer_id = header.producer_id
    if producer_id == NO_PRODUCER_ID:
        raise Rejected(ErrorCode.INVALID_RECORD, "a transactional batch needs a producer id")
    producers = partition.producers
    if producers.has_ongoing(producer_id):
        return
    token = producers.start_verification(producer_id)
    # Raises ApiError with the codes a produce answers (Kafka's ReplicaManager maps them).
    await broker.transactions.verify_partition(transactional_id, producer_id, header.producer_epoch,
                                               partition.topic.name, partition.index)
    if not producers.verified(producer_id, token):
        raise Rejected(ErrorCode.INVALID_TXN_STATE, "the transaction ended while the partition was verified")


async def _produce_to(broker, partition: Partition, record_set, api_version: int,
                      transactional_id: str | None) -> tuple[int, int]:
    """Append one partition's batch; its base offset and log append time (-1 for CreateTime)."""
    header, batch = _one_batch(partition, record_set, api_version)
    # Verified once, before the record walk (which reads bytes only the CRC vouches for, so that a
    # batch damaged in transit is reported as such), de-duplication and a new timestamp (which
    # recomputes the CRC), as Kafka does; the log trusts it.
    _verify_crc(header, batch)
    await _validate_records(header, batch)
    transactional = header.is_transactional
    if transactional:
        await _verify_transaction(broker, partition, header, transactional_id)
    check = partition.producers.check(header.producer_id, header.producer_epoch,
                                      header.base_sequence, header.last_offset_delta, transactional)
    if check.duplicate is not None:
        return check.duplicate.base_offset, -1
    if check.error != ErrorCode.NONE:
        raise Rejected(check.error, f"producer {header.producer_id} epoch {header.producer_epoch} "
                                    f"sequence {header.base_sequence} rejected")
    append_time_ms = -1
    if partition.topic.config.message_timestamp_type == "LogAppendTime":
        append_time_ms = broker.clock()
        batch = bytearray(batch)
        header = record_batch.set_log_append_time(batch, header, append_time_ms)
    try:
        appended = partition.log.append(batch, verified_header=header)
    except RecordBatchTooLargeError as exc:
        raise Rejected(ErrorCode.RECORD_LIST_TOO_LARGE, str(exc)) from exc
    except LogStorageError as exc:
        logger.error("%s-%d: cannot append: %s", partition.topic.name, partition.index, exc)
        raise Rejected(ErrorCode.KAFKA_STORAGE_ERROR, str(exc)) from exc
    if header.producer_id != NO_PRODUCER_ID:
        partition.producers.record(header.producer_id, header.producer_epoch, header.base_sequence,
                                   appended.base_offset, appended.last_offset, header.max_timestamp, transactional)
    broker.appended(partition)
    return appended.base_offset, append_time_ms


def _failed(index: int, exc: ApiError):
    """A partition's answer to a failed produce: the one place its errors become fields."""
    response = _PartitionProduceResponse(index=index, base_offset=-1, **error_fields(_PartitionProduceResponse, exc))
    if isinstance(exc, Rejected) and exc.batch_index is not None:
        response["record_errors"] = [PRODUCE_RESPONSE.BatchIndexAndErrorMessage(
            batch_index=exc.batch_index, batch_index_error_message=exc.message)]
    return response


@handles(ApiKey.PRODUCE)
async def produce(broker: Services, header, request):
    acks = request.acks
    transactional_id = request.get("transactional_id")  # Produce v3+
    responses = []
    written: list[Partition] = []
    failed = False
    for topic_data in request.topic_data:
        partition_responses = []
        for partition_data in topic_data.partition_data:
            try:
                if acks not in _VALID_ACKS:
                    raise ApiError(ErrorCode.INVALID_REQUIRED_ACKS, f"acks must be -1, 0 or 1, not {acks}")
                partition = await broker.topics.producible_partition(topic_data.name, partition_data.index)
                if acks == -1 and partition.topic.config.min_insync_replicas > 1:
                    # One broker is one in-sync replica: acks=all cannot meet a higher minimum.
                    raise ApiError(ErrorCode.NOT_ENOUGH_REPLICAS,
                                   f"min.insync.replicas is {partition.topic.config.min_insync_replicas}, "
                                   f"but this broker is the only replica")
                base_offset, log_append_time_ms = await _produce_to(broker, partition, partition_data.records,
                                                                    header.request_api_version, transactional_id)
            except ApiError as exc:
                failed = True
                partition_responses.append(_failed(partition_data.index, exc))
                continue
            partition_responses.append(_PartitionProduceResponse(
                index=partition_data.index, base_offset=base_offset, log_append_time_ms=log_append_time_ms,
                log_start_offset=partition.log.log_start_offset))
            written.append(partition)
        responses.append(PRODUCE_RESPONSE.TopicProduceResponse(name=topic_data.name,
                                                               partition_responses=partition_responses))
    if acks == 0:
        if failed:
            # acks=0 gets no response; as in Kafka, closing the connection is how the producer learns.
            raise CloseConnection("acks=0 produce request failed")
        return None
    if acks == -1 and broker.config.flush_on_ack:
        for partition in written:
            await partition.flush_to(partition.log.log_end_offset)
    return PRODUCE_RESPONSE(responses=responses)
