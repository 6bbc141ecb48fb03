"""ListOffsets (2): earliest, latest, max-timestamp and by-timestamp offset lookups; read_committed
ones see the log up to the last stable offset."""

from __future__ import annotations

from broker.acls import ResourceType, authorized_names
from broker.authorized_operations import AclOperation
from broker.handlers.base import Services, answer_each_partition, handles
from broker.handlers.fetch import READ_COMMITTED
from broker.registry import LEADER_EPOCH, Partition
from log import CorruptLogError
from protocol import records
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.fetch import LIST_OFFSETS_RESPONSE

LATEST_TIMESTAMP = -1
EARLIEST_TIMESTAMP = -2
MAX_TIMESTAMP = -3
# Tiered-storage lookups (v8+, v9+): with no remote tier, the local log is the whole log.
EARLIEST_LOCAL_TIMESTAMP = -4
LATEST_TIERED_TIMESTAMP = -5
NOT_FOUND = (-1, -1)


def _first_record_at_or_after(partition: Partition, timestamp: int) -> tuple[int, int]:
    """(offset, timestamp) of the first record whose timestamp >= `timestamp`, or NOT_FOUND."""
    log = partition.log
    found = log.offset_for_timestamp(timestamp)
    offset = found.offset if found else log.log_end_offset
    while offset < log.log_end_offset:
        # The time index finds the batch; the exact record is found inside it, as Kafka does.
        batch_slice = log.read(offset, 1)
        for header, batch in records.iter_batches(bytes(batch_slice)):
            for record in records.iter_records(batch):
                if record.offset >= offset and record.timestamp >= timestamp:
                    return record.offset, record.timestamp
            offset = header.next_offset
    return NOT_FOUND


def _max_timestamp(partition: Partition) -> tuple[int, int]:
    """(offset, timestamp) of the record with the largest timestamp, or NOT_FOUND when empty."""
    max_timestamp = partition.log.max_timestamp
    if max_timestamp is None:
        return NOT_FOUND
    return _first_record_at_or_after(partition, max_timestamp)


def _lookup(partition: Partition, timestamp: int, last_fetchable_offset: int) -> tuple[int, int]:
    log = partition.log
    if timestamp == LATEST_TIMESTAMP:
        return last_fetchable_offset, -1
    if timestamp in (EARLIEST_TIMESTAMP, EARLIEST_LOCAL_TIMESTAMP):
        return log.log_start_offset, -1
    if timestamp == MAX_TIMESTAMP:
        found = _max_timestamp(partition)
    elif timestamp == LATEST_TIERED_TIMESTAMP:
        return NOT_FOUND
    else:
        found = _first_record_at_or_after(partition, timestamp)
    # A record a read_committed consumer cannot fetch yet is not found, as in Kafka.
    return found if found[0] < last_fetchable_offset else NOT_FOUND


async def _answer(partition: Partition, wanted, read_committed: bool) -> dict:
    last_fetchable_offset = partition.last_stable_offset if read_committed else partition.log.log_end_offset
    try:
        offset, timestamp = _lookup(partition, wanted.timestamp, last_fetchable_offset)
    except CorruptLogError as exc:
        # The batches searched by timestamp are damaged (the log names the file); as in Fetch.
        raise ApiError(ErrorCode.CORRUPT_MESSAGE) from exc
    # v0 answers with a list of offsets instead of one offset.
    return {"offset": offset, "timestamp": timestamp, "leader_epoch": LEADER_EPOCH if offset >= 0 else -1,
            "old_style_offsets": [offset] if offset >= 0 else []}


@handles(ApiKey.LIST_OFFSETS)
async def list_offsets(broker: Services, header, request):
    # v2+ carry the isolation level: read_committed looks no further than the last stable offset.
    read_committed = request.get("isolation_level", 0) == READ_COMMITTED
    names = [topic.name for topic in request.topics]
    denied = set(names) - authorized_names(broker.authorizer, AclOperation.DESCRIBE, ResourceType.TOPIC, names)
    return LIST_OFFSETS_RESPONSE(topics=await answer_each_partition(
        broker, request.topics, LIST_OFFSETS_RESPONSE.ListOffsetsTopicResponse,
        LIST_OFFSETS_RESPONSE.ListOffsetsPartitionResponse,
        lambda partition, wanted: _answer(partition, wanted, read_committed), denied=denied))
