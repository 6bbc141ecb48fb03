"""Produce (0): validate each partition's record batch (and recompress it to its topic's
compression.type), verify a transactional one with the transaction coordinator, de-duplicate
idempotent retries, append."""

from __future__ import annotations

import logging

import trio

from broker.acls import ResourceType, authorized, authorized_names
from broker.authorized_operations import AclOperation
from broker.handlers.base import CloseConnection, Services, error_fields, handles
from broker.producer_state import NO_PRODUCER_ID
from broker.registry import Partition
from log import LogStorageError, RecordBatchTooLargeError
from log.config import UNLIMITED
from protocol import legacy, record_batch, records
from protocol.compression import Compression
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
# Reading every record's timestamp, or key, decodes every record: about twice the validation walk's cost.
_DECODING_WALK_COST = 2
# compression.type's codecs; "producer" (None) stores each batch with the codec it came in.
_TOPIC_CODECS = {"uncompressed": Compression.NONE, "gzip": Compression.GZIP, "snappy": Compression.SNAPPY,
                 "lz4": Compression.LZ4, "zstd": Compression.ZSTD, "producer": None}
_LEVEL_CONFIGS = {Compression.GZIP: "compression.gzip.level", Compression.LZ4: "compression.lz4.level",
                  Compression.ZSTD: "compression.zstd.level"}


# A record error: the index of the record at fault in its batch, and why.
RecordError = tuple[int, str]


class Rejected(ApiError):
    """A partition's batch refused, and the records at fault when known (Kafka's
    RecordValidationException, whose record errors ProduceResponse v8+ reports)."""

    def __init__(self, code: ErrorCode, message: str, record_errors: tuple[RecordError, ...] = ()) -> None:
        super().__init__(code, message)
        self.record_errors = record_errors


def _level(config, codec: Compression) -> int | None:
    """The topic's compression level for `codec` (None: the codec has none)."""
    level_config = _LEVEL_CONFIGS.get(codec)
    return None if level_config is None else config.value(level_config)


def _timestamp_bounds(config, clock) -> tuple[int, int] | None:
    """The earliest and latest CreateTime timestamps a CreateTime topic accepts now, or None when
    it takes any. As in Kafka 3.9, a bound left at its default is the deprecated
    message.timestamp.difference.max.ms."""
    before, after = config.value("message.timestamp.before.max.ms"), config.value("message.timestamp.after.max.ms")
    if before == UNLIMITED or after == UNLIMITED:
        difference = config.value("message.timestamp.difference.max.ms")
        before, after = (difference if before == UNLIMITED else before), (difference if after == UNLIMITED else after)
        if before == UNLIMITED and after == UNLIMITED:
            return None
    now = clock()
    return now - before, now + after


def _from_legacy(record_set, compression: Compression | None) -> tuple[bytes | None, str | None]:
    """The legacy message set as one magic-2 batch, or why it is not one. Plain values, as
    _checked_records returns."""
    try:
        return legacy.to_record_batch(record_set, compression=compression), None
    except ProtocolError as exc:
        return None, f"invalid legacy message set: {exc}"


async def _one_batch(partition: Partition, record_set, api_version: int, codec: Compression | None):
    """The partition's single magic-2 record batch and its header, checked the way Kafka's
    LogValidator does; not its CRC yet (_verify_crc). A legacy message set is converted (in the
    worker thread: it may be compressed) uncompressed when the topic's codec will be applied anyway."""
    if record_set is None or len(record_set) == 0:
        raise Rejected(ErrorCode.INVALID_RECORD, "the record set is empty")
    if api_version < FIRST_MAGIC_2_VERSION:
        record_set, fault = await trio.to_thread.run_sync(
            _from_legacy, record_set, None if codec is None else Compression.NONE, limiter=_RECORDS_WORKER)
        if fault is not None:
            raise Rejected(ErrorCode.CORRUPT_MESSAGE, fault)
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


_Fault = tuple[ErrorCode, str, tuple[RecordError, ...]]


def _record_fault(header: record_batch.BatchHeader, section, bounds: tuple[int, int] | None,
                  compacted_partition: str | None) -> _Fault | None:
    """Kafka's LogValidator's checks of each record: INVALID_RECORD for a record without a key in
    the compacted partition named (if one is), else INVALID_TIMESTAMP for a CreateTime outside
    `bounds` (a record without timestamp, -1, is not checked), worded as Kafka words them. A batch
    with any timestamp error is refused INVALID_TIMESTAMP, as in Kafka."""
    errors: dict[int, str] = {}
    timestamp_errors = False
    if compacted_partition is not None:
        errors = {index: f"Compacted topic cannot accept message without key in topic partition {compacted_partition}."
                  for index in records.keyless_records(section, header.records_count)}
    if bounds is not None:
        earliest, latest = bounds
        for index, timestamp in enumerate(records.record_timestamps(header, section)):
            if index not in errors and not earliest <= timestamp <= latest and timestamp != record_batch.NO_TIMESTAMP:
                errors[index] = (f"Timestamp {timestamp} of message with offset {header.base_offset + index} is out "
                                 f"of range. The timestamp should be within [{earliest}, {latest}]")
                timestamp_errors = True
    if not errors:
        return None
    listed = tuple(sorted(errors.items()))
    if timestamp_errors:
        return ErrorCode.INVALID_TIMESTAMP, "One or more records have been rejected due to invalid timestamp", listed
    shown = ", ".join(f"RecordError(batchIndex={index}, message='{message}')" for index, message in listed[:3])
    return (ErrorCode.INVALID_RECORD, f"One or more records have been rejected due to {len(listed)} record errors "
                                      f"in total, and only showing the first three errors at most: [{shown}]", listed)


def _checked_records(header: record_batch.BatchHeader, batch, bounds: tuple[int, int] | None,
                     compacted_partition: str | None, codec: Compression | None,
                     level: int | None) -> tuple[bytearray | None, _Fault | None]:
    """The batch recompressed with `codec` (None: kept as it is), or why its records are refused
    (code, message, records at fault). Plain values, not the exception: its traceback holds the
    decompressed records (up to 64 MiB), which a reference cycle in the thread hand-off would keep
    alive until the next garbage collection."""
    try:
        section = records.validate_records(header, batch)
        if (bounds is not None or compacted_partition is not None) and (
                fault := _record_fault(header, section, bounds, compacted_partition)) is not None:
            return None, fault
        if codec is None:
            return None, None
        return records.recompress(header, section, codec, level=level), None
    except records.InvalidRecordError as exc:
        return None, (exc.error_code, str(exc), () if exc.batch_index is None else ((exc.batch_index, str(exc)),))
    except CorruptRecordError as exc:
        return None, (exc.error_code, str(exc), ())


async def _validate_records(partition: Partition, header: record_batch.BatchHeader, batch,
                            bounds: tuple[int, int] | None, codec: Compression | None, level: int | None):
    """Reject a batch whose records do not parse as its header says, or whose timestamps are out of
    `bounds`, as Kafka's LogValidator does; the batch and header to store, recompressed with `codec`
    unless None. A compacted topic's records need keys."""
    compacted = f"{partition.topic.name}-{partition.index}" if partition.log.config.compact else None
    walks = 1 + (bounds is not None) + (compacted is not None)
    walked = header.records_count * (1 + (walks - 1) * _DECODING_WALK_COST)
    if codec is None and not header.is_compressed and walked <= _MAX_RECORDS_ON_LOOP:
        recompressed, fault = _checked_records(header, batch, bounds, compacted, codec, level)
    else:
        recompressed, fault = await trio.to_thread.run_sync(_checked_records, header, batch, bounds, compacted, codec,
                                                            level, limiter=_RECORDS_WORKER)
    if fault is not None:
        raise Rejected(*fault)
    if recompressed is None:
        return header, batch
    max_message_bytes = partition.topic.config.max_message_bytes
    if len(recompressed) > max_message_bytes:
        # Kafka's words, missing space included.
        raise Rejected(ErrorCode.MESSAGE_TOO_LARGE,
                       f"Message batch size is {len(recompressed)} bytes in append to"
                       f"partition {partition.topic.name}-{partition.index} which exceeds the maximum "
                       f"configured size of {max_message_bytes}.")
    return record_batch.parse_header(recompressed), recompressed


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
    config = partition.topic.config
    codec = _TOPIC_CODECS[config.value("compression.type")]  # None: the producer's
    header, batch = await _one_batch(partition, record_set, api_version, codec)
    # Verified once, before the record walk (which reads bytes only the CRC vouches for, so that a
    # batch damaged in transit is reported as such), de-duplication and a new timestamp or codec
    # (which recompute the CRC), as Kafka does; the log trusts it.
    _verify_crc(header, batch)
    if codec == records.compression_of(header.attributes):
        codec = None  # the topic's codec already: stored as it came, at the producer's level (as Kafka)
    log_append_time = config.message_timestamp_type == "LogAppendTime"
    # Under LogAppendTime, as in Kafka, the broker's time replaces the producer's unchecked.
    bounds = None if log_append_time else _timestamp_bounds(config, broker.clock)
    header, batch = await _validate_records(partition, header, batch, bounds, codec,
                                            None if codec is None else _level(config, codec))
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
    if log_append_time:
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
    if isinstance(exc, Rejected) and exc.record_errors:
        response["record_errors"] = [PRODUCE_RESPONSE.BatchIndexAndErrorMessage(
            batch_index=index, batch_index_error_message=message) for index, message in exc.record_errors]
    return response


async def _appends_resumed(broker, partition: Partition, timeout_ms: int) -> None:
    """Wait for a paused partition's appends to resume (broker.faults), up to the request's timeout."""
    with trio.move_on_after(timeout_ms / 1000):
        await broker.faults.appends_resumed(partition.topic.name, partition.index)
        return
    raise ApiError(ErrorCode.REQUEST_TIMED_OUT, f"appends to {partition.topic.name}-{partition.index} are paused "
                                                f"(an injected fault)")


def _has_transactional_records(request, api_version: int) -> bool:
    """Whether a partition's batch is transactional (Kafka's RequestUtils.hasTransactionalRecords);
    a batch whose header does not parse is the partition's error later."""
    if api_version < FIRST_MAGIC_2_VERSION:
        return False
    for topic_data in request.topic_data:
        for partition_data in topic_data.partition_data:
            try:
                if partition_data.records and record_batch.parse_header(partition_data.records).is_transactional:
                    return True
            except CorruptRecordError:
                pass
    return False


def may_auto_create(broker: Services, name: str) -> bool:
    """Whether the session may have the topic `name` auto-created: CREATE on the cluster or on the
    topic, as Kafka's Metadata asks."""
    return (authorized(broker.authorizer, AclOperation.CREATE, ResourceType.CLUSTER)
            or authorized(broker.authorizer, AclOperation.CREATE, ResourceType.TOPIC, name))


@handles(ApiKey.PRODUCE)
async def produce(broker: Services, header, request):
    acks = request.acks
    transactional_id = request.get("transactional_id")  # Produce v3+
    # Kafka's checks, in its order: the transactional id of transactional records (the whole
    # request fails), then WRITE on each topic, before whether it exists.
    denied_transaction = None
    # (Without an authorizer the batches' headers are not read twice.)
    if broker.authorizer is not None and _has_transactional_records(request, header.request_api_version) and (
            transactional_id is None
            or not authorized(broker.authorizer, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID, transactional_id)):
        denied_transaction = ApiError(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    writable = authorized_names(broker.authorizer, AclOperation.WRITE, ResourceType.TOPIC,
                                (topic_data.name for topic_data in request.topic_data))
    responses = []
    written: list[Partition] = []
    failed = False
    for topic_data in request.topic_data:
        partition_responses = []
        for partition_data in topic_data.partition_data:
            try:
                if denied_transaction is not None:
                    raise denied_transaction
                if topic_data.name not in writable:
                    raise ApiError(ErrorCode.TOPIC_AUTHORIZATION_FAILED)
                if acks not in _VALID_ACKS:
                    raise ApiError(ErrorCode.INVALID_REQUIRED_ACKS, f"acks must be -1, 0 or 1, not {acks}")
                if broker.topics.get(topic_data.name) is None and not may_auto_create(broker, topic_data.name):
                    raise ApiError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                                   f"unknown topic-partition {topic_data.name}-{partition_data.index}")
                partition = await broker.topics.producible_partition(topic_data.name, partition_data.index)
                if acks == -1 and partition.topic.config.min_insync_replicas > 1:
                    # One broker is one in-sync replica: acks=all cannot meet a higher minimum.
                    raise ApiError(ErrorCode.NOT_ENOUGH_REPLICAS,
                                   f"min.insync.replicas is {partition.topic.config.min_insync_replicas}, "
                                   f"but this broker is the only replica")
                if broker.faults.appends_paused(topic_data.name, partition_data.index):
                    await _appends_resumed(broker, partition, request.timeout_ms)
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
