"""Fetch (1): stored batches verbatim from the log, with long polling and KIP-74 size limits;
read_committed fetches stop at the last stable offset and name the aborted transactions to drop.

A long poll re-reads after every append anywhere, transaction markers included: so a
read_committed one also wakes when the last stable offset moves."""

from __future__ import annotations

import trio

from broker.acls import ResourceType, authorized, authorized_names
from broker.authorized_operations import AclOperation
from broker.handlers.base import Services, handles
from log import CorruptLogError, OffsetOutOfRangeError
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.fetch import FETCH_RESPONSE
from protocol.primitives import ZERO_UUID

_PartitionData = FETCH_RESPONSE.PartitionData
_AbortedTransaction = FETCH_RESPONSE.AbortedTransaction
# KIP-98: a read_committed fetch reads no further than the last stable offset.
READ_COMMITTED = 1
# Fetch v0-v3 readers expect legacy message sets, which would need down-conversion; like Kafka 4.0,
# this broker serves only v4+ (magic 2 record batches, which every current client reads).
FIRST_SUPPORTED_VERSION = 4
# Fetch v13 names topics by topic id instead of by name.
FIRST_TOPIC_ID_VERSION = 13
# Session ids and epochs of KIP-227 incremental fetch sessions; this broker keeps no sessions, so
# every fetch is a full one, which clients accept when the response carries session id 0.
NO_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
_INT32_MAX = 2**31 - 1


def _check_session(request) -> None:
    if request.get("session_id", NO_SESSION_ID) != NO_SESSION_ID:
        raise ApiError(ErrorCode.FETCH_SESSION_ID_NOT_FOUND)
    if request.get("session_epoch", FINAL_EPOCH) not in (INITIAL_EPOCH, FINAL_EPOCH):
        raise ApiError(ErrorCode.INVALID_FETCH_SESSION_EPOCH)


def _partition_response(index: int, error: ErrorCode, high_watermark: int = -1, last_stable_offset: int = -1,
                        log_start_offset: int = -1, records=b"", aborted_transactions=None):
    return _PartitionData(partition_index=index, error_code=error, high_watermark=high_watermark,
                          last_stable_offset=last_stable_offset, log_start_offset=log_start_offset,
                          aborted_transactions=aborted_transactions, records=records)


def _aborted_transactions(log, fetch_offset: int, records, last_stable_offset: int) -> list:
    """The aborted transactions a read_committed consumer needs to drop from `records` (read from
    `fetch_offset`): those overlapping it, bounded above by what was read and by the last stable
    offset, which no record read reaches."""
    if not len(records):
        return []
    upper_bound = min(log.fetch_upper_bound(fetch_offset, records), last_stable_offset)
    return [_AbortedTransaction(producer_id=aborted.producer_id, first_offset=aborted.first_offset)
            for aborted in log.aborted_transactions(fetch_offset, upper_bound)]


class _FetchPlan:
    """One pass over the requested partitions; re-run after appends while a long poll waits."""

    def __init__(self, broker: Services, request, api_version: int) -> None:
        self.broker = broker
        self.request = request
        self.by_topic_id = api_version >= FIRST_TOPIC_ID_VERSION
        self.read_committed = request.isolation_level == READ_COMMITTED
        self.denied = self._denied_topics()

    def _denied_topics(self) -> set[str] | None:
        """The names of the topics the session may not read, asked once for the whole long poll;
        None: every topic (a follower's fetch without CLUSTER_ACTION, as Kafka answers it)."""
        authorizer = self.broker.authorizer
        if authorizer is None:
            return set()  # without looking the topic ids up twice
        # v15+ name the replica in a tagged field.
        replica_state = self.request.get("replica_state")
        replica_id = self.request.get("replica_id", -1) if replica_state is None else replica_state.replica_id
        if replica_id >= 0:
            return set() if authorized(authorizer, AclOperation.CLUSTER_ACTION, ResourceType.CLUSTER) else None
        names = {self._name(fetch_topic) for fetch_topic in self.request.topics} - {None}
        return names - authorized_names(authorizer, AclOperation.READ, ResourceType.TOPIC, names)

    def _name(self, fetch_topic) -> str | None:
        """The topic's name: as the request gives it, or its id's (None: an unknown id)."""
        if not self.by_topic_id:
            return fetch_topic.topic
        topic = self.broker.topics.by_id(fetch_topic.topic_id)
        return None if topic is None else topic.name

    def _topic(self, fetch_topic):
        if self.by_topic_id:
            return self.broker.topics.by_id(fetch_topic.topic_id)
        return self.broker.topics.get(fetch_topic.topic)

    def read(self) -> tuple[list, int]:
        """The response's topics and how many record bytes they carry."""
        budget = self.request.get("max_bytes", _INT32_MAX)
        total = 0
        responses = []
        for fetch_topic in self.request.topics:
            topic = self._topic(fetch_topic)
            partitions = []
            name = self._name(fetch_topic)
            for wanted in fetch_topic.partitions:
                # Kafka's order: an unknown topic id, then authorization, then an unknown partition.
                if name is not None and (self.denied is None or name in self.denied):
                    partitions.append(_partition_response(wanted.partition, ErrorCode.TOPIC_AUTHORIZATION_FAILED))
                    continue
                if topic is None or not 0 <= wanted.partition < len(topic.partitions):
                    unknown = ErrorCode.UNKNOWN_TOPIC_ID if self.by_topic_id else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                    partitions.append(_partition_response(wanted.partition, unknown))
                    continue
                partition = topic.partitions[wanted.partition]
                log = partition.log
                high_watermark = log.log_end_offset
                last_stable_offset = partition.last_stable_offset
                records, error, aborted = b"", ErrorCode.NONE, None
                if self.broker.faults.fetches_paused(topic.name, wanted.partition):
                    partitions.append(_partition_response(wanted.partition, error, high_watermark,
                                                          last_stable_offset, log.log_start_offset))
                    continue
                try:
                    # KIP-74: the first partition with data returns at least one whole batch, even
                    # over the limits; later ones are cut at the remaining budget.
                    limit = max(min(wanted.partition_max_bytes, budget - total), 0)
                    records = log.read(wanted.fetch_offset, limit, min_one_batch=total == 0,
                                       max_offset=last_stable_offset if self.read_committed else None)
                    if self.read_committed:
                        aborted = _aborted_transactions(log, wanted.fetch_offset, records, last_stable_offset)
                except OffsetOutOfRangeError:
                    error = ErrorCode.OFFSET_OUT_OF_RANGE
                except CorruptLogError:
                    # Kafka's answer to a corrupt batch found while reading. Not KAFKA_STORAGE_ERROR:
                    # librdkafka and kafka-python retry that one silently, as a leader move, forever;
                    # this one reaches the application. The log has named the file and offset.
                    error = ErrorCode.CORRUPT_MESSAGE
                total += len(records)
                partitions.append(_partition_response(wanted.partition, error, high_watermark, last_stable_offset,
                                                      log.log_start_offset, records, aborted))
            responses.append(FETCH_RESPONSE.FetchableTopicResponse(
                topic=fetch_topic.get("topic", ""), topic_id=fetch_topic.get("topic_id", ZERO_UUID),
                partitions=partitions))
        return responses, total


@handles(ApiKey.FETCH, min_version=FIRST_SUPPORTED_VERSION)
async def fetch(broker: Services, header, request):
    _check_session(request)
    plan = _FetchPlan(broker, request, header.request_api_version)
    responses, size = plan.read()
    if size < request.min_bytes and request.max_wait_ms > 0:
        with trio.move_on_after(request.max_wait_ms / 1000):
            while size < request.min_bytes and not broker.stopping.is_set():
                await broker.wait_for_appends()
                responses, size = plan.read()
    return FETCH_RESPONSE(session_id=NO_SESSION_ID, responses=responses)
