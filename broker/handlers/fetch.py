"""Fetch (1): stored batches verbatim from the log, with long polling, KIP-74 size limits and
KIP-227 incremental fetch sessions; read_committed fetches stop at the last stable offset and name
the aborted transactions to drop.

A long poll re-reads after every append anywhere, transaction markers included: so a
read_committed one also wakes when the last stable offset moves."""

from __future__ import annotations

import trio

from broker.acls import ResourceType, authorized
from broker.authorized_operations import AclOperation
from broker.fetch_sessions import FINAL_EPOCH, INITIAL_EPOCH, INVALID_SESSION_ID, FetchSession, next_epoch
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
# Fetch v7 brought incremental fetch sessions (KIP-227, broker.fetch_sessions).
FIRST_SESSION_VERSION = 7
# Fetch v13 names topics by topic id instead of by name.
FIRST_TOPIC_ID_VERSION = 13
_INT32_MAX = 2**31 - 1


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
    """One pass over the partitions to read; re-run after appends while a long poll waits."""

    def __init__(self, broker: Services, request, api_version: int) -> None:
        self.broker = broker
        self.request = request
        self.by_topic_id = api_version >= FIRST_TOPIC_ID_VERSION
        self.read_committed = request.isolation_level == READ_COMMITTED
        self._readable = self._may_read_any()
        # Topic name -> whether the session may read it, asked once for the whole long poll.
        self._authorized: dict[str, bool] = {}

    def _may_read_any(self) -> bool | None:
        """False: no topic (a follower's fetch without CLUSTER_ACTION, as Kafka answers it);
        True: every topic; None: as the ACLs say of each."""
        authorizer = self.broker.authorizer
        if authorizer is None:
            return True
        # v15+ name the replica in a tagged field.
        replica_state = self.request.get("replica_state")
        replica_id = self.request.get("replica_id", -1) if replica_state is None else replica_state.replica_id
        if replica_id >= 0:
            return authorized(authorizer, AclOperation.CLUSTER_ACTION, ResourceType.CLUSTER)
        return None

    def _may_read(self, name: str) -> bool:
        if self._readable is not None:
            return self._readable
        if (allowed := self._authorized.get(name)) is None:
            allowed = self._authorized[name] = authorized(self.broker.authorizer, AclOperation.READ,
                                                          ResourceType.TOPIC, name)
        return allowed

    def topic(self, topic_key):
        """The topic a request names by `topic_key` (its name, or its id from v13); None: unknown."""
        if self.by_topic_id:
            return self.broker.topics.by_id(topic_key)
        return self.broker.topics.get(topic_key)

    def requested(self) -> list[tuple]:
        """(topic as named, its name or None, request partition) of each partition the request names."""
        entries = []
        for fetch_topic in self.request.topics:
            if self.by_topic_id:
                topic_key = fetch_topic.topic_id
                topic = self.broker.topics.by_id(topic_key)
                name = None if topic is None else topic.name
            else:
                topic_key = name = fetch_topic.topic
            entries.extend((topic_key, name, wanted) for wanted in fetch_topic.partitions)
        return entries

    def read(self, entries) -> tuple[list[tuple], int]:
        """[(entry, its partition's answer)] of each (topic as named, name, wanted partition) in
        `entries`, and how many record bytes they carry."""
        budget = self.request.get("max_bytes", _INT32_MAX)
        total = 0
        answers = []
        topic_key = topic = None
        for entry in entries:
            if entry[0] != topic_key:
                topic_key = entry[0]
                topic = self.topic(topic_key)
            data = self._read_partition(topic, entry[1], entry[2], budget - total, total == 0)
            total += len(data["records"])
            answers.append((entry, data))
        return answers, total

    def _read_partition(self, topic, name: str | None, wanted, budget: int, first: bool):
        index = wanted.partition
        # Kafka's order: an unknown topic id, then authorization, then an unknown partition.
        if name is not None and not self._may_read(name):
            return _partition_response(index, ErrorCode.TOPIC_AUTHORIZATION_FAILED)
        if topic is None or not 0 <= index < len(topic.partitions):
            return _partition_response(
                index, ErrorCode.UNKNOWN_TOPIC_ID if self.by_topic_id else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
        partition = topic.partitions[index]
        log = partition.log
        high_watermark = log.log_end_offset
        last_stable_offset = partition.last_stable_offset
        if self.broker.faults.fetches_paused(topic.name, index):
            return _partition_response(index, ErrorCode.NONE, high_watermark, last_stable_offset, log.log_start_offset)
        fetch_offset = wanted.fetch_offset
        # read_committed answers name the aborted transactions, none as an empty list (as Kafka).
        aborted = [] if self.read_committed else None
        if fetch_offset == high_watermark:
            # A consumer at the log end, the commonest partition of a fetch: nothing to read
            # (answered here, not by the log's read: a third of an idle partition's cost).
            return _partition_response(index, ErrorCode.NONE, high_watermark, last_stable_offset,
                                       log.log_start_offset, b"", aborted)
        records, error = b"", ErrorCode.NONE
        try:
            # KIP-74: the first partition with data returns at least one whole batch, even over
            # the limits; later ones are cut at the remaining budget.
            records = log.read(fetch_offset, max(min(wanted.partition_max_bytes, budget), 0),
                               min_one_batch=first, max_offset=last_stable_offset if self.read_committed else None)
            if self.read_committed:
                aborted = _aborted_transactions(log, fetch_offset, records, last_stable_offset)
        except OffsetOutOfRangeError:
            error = ErrorCode.OFFSET_OUT_OF_RANGE
        except CorruptLogError:
            # Kafka's answer to a corrupt batch found while reading. Not KAFKA_STORAGE_ERROR:
            # librdkafka and kafka-python retry that one silently, as a leader move, forever;
            # this one reaches the application. The log has named the file and offset.
            error = ErrorCode.CORRUPT_MESSAGE
        return _partition_response(index, error, high_watermark, last_stable_offset, log.log_start_offset,
                                   records, aborted)

    def responses(self, answers: list[tuple]) -> list:
        """The response's topics: each run of answers of one topic, in order, as Kafka groups them."""
        responses = []
        topic_key = None
        for (key, _, _), data in answers:
            if not responses or key != topic_key:
                topic_key = key
                responses.append(FETCH_RESPONSE.FetchableTopicResponse(
                    topic="" if self.by_topic_id else key, topic_id=key if self.by_topic_id else ZERO_UUID,
                    partitions=[]))
            responses[-1]["partitions"].append(data)
        return responses


class _FetchContext:
    """What a fetch reads and answers, by its session metadata (Kafka's FetchContext): every
    partition it names, with no session (epoch -1) or with a new one (epoch 0, the session then
    created with the answer), or its session's partitions that may have something new."""

    def __init__(self, broker: Services, plan: _FetchPlan, request, api_version: int) -> None:
        self.sessions = broker.fetch_sessions
        self.plan = plan
        self.session: FetchSession | None = None
        self.create = False
        self.acl_version = None if broker.authorizer is None else broker.authorizer.version
        # v4-6 have no session fields: sessionless.
        session_id = request.get("session_id", INVALID_SESSION_ID)
        epoch = request.get("session_epoch", FINAL_EPOCH)
        if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
            # A full fetch closes the session it names.
            if session_id != INVALID_SESSION_ID:
                self.sessions.remove(session_id)
            self.create = epoch == INITIAL_EPOCH and api_version >= FIRST_SESSION_VERSION
            self.requested = plan.requested()
            return
        session = self.sessions.get(session_id)
        if session is None:
            raise ApiError(ErrorCode.FETCH_SESSION_ID_NOT_FOUND)
        if session.epoch != epoch:
            raise ApiError(ErrorCode.INVALID_FETCH_SESSION_EPOCH)
        if session.uses_topic_ids != plan.by_topic_id:
            raise ApiError(ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR)
        self.requested = plan.requested()
        forgotten = [(topic.topic_id if plan.by_topic_id else topic.topic, index)
                     for topic in request.forgotten_topics_data for index in topic.partitions]
        if self.sessions.update(session, self.requested, forgotten):
            session.epoch = next_epoch(session.epoch)
            self.session = session
            if session.acl_version != self.acl_version:
                session.acl_version = self.acl_version
                session.mark_all_dirty()
        # Else the session is gone (nothing left in it): answered as a sessionless fetch, as Kafka does.

    def read(self) -> tuple[list[tuple], int]:
        if self.session is None:
            return self.plan.read(self.requested)
        return self.plan.read([(cached.topic, cached.name, cached) for cached in self.session.dirty.values()])

    def answer(self, answers: list[tuple]):
        """The response, the session's record of what its consumer was told brought up to date."""
        session = self.session
        if self.create:
            session = self.sessions.create(self.plan.by_topic_id, self.requested, len(self.requested))
            if session is not None:
                session.acl_version = self.acl_version
                answers = [((key, name, session.partitions[key, wanted.partition]), data)
                           for (key, name, wanted), data in answers]
        if session is not None:
            read_committed = self.plan.read_committed
            sent = []
            for answer in answers:
                (_, _, cached), data = answer
                # A full fetch's answer holds every partition; an incremental one only what is new.
                if self.create or cached.must_respond(data):
                    cached.sent(data)
                    sent.append(answer)
                if not cached.may_have_more(data, read_committed):
                    session.dirty.pop(cached.key, None)
                elif len(data["records"]):
                    session.dirty[cached.key] = session.dirty.pop(cached.key)  # behind the others
            answers = sent
        return FETCH_RESPONSE(session_id=INVALID_SESSION_ID if session is None else session.id,
                              responses=self.plan.responses(answers))


@handles(ApiKey.FETCH, min_version=FIRST_SUPPORTED_VERSION)
async def fetch(broker: Services, header, request):
    plan = _FetchPlan(broker, request, header.request_api_version)
    context = _FetchContext(broker, plan, request, header.request_api_version)
    answers, size = context.read()
    if size < request.min_bytes and request.max_wait_ms > 0:
        with trio.move_on_after(request.max_wait_ms / 1000):
            while size < request.min_bytes and not broker.stopping.is_set():
                await broker.wait_for_appends()
                answers, size = context.read()
    return context.answer(answers)
