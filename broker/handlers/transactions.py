"""Transactions: AddPartitionsToTxn (24), AddOffsetsToTxn (25), EndTxn (26), TxnOffsetCommit (28),
DescribeTransactions (65) and ListTransactions (66), answered by the transaction coordinator
(and, for the offsets of TxnOffsetCommit, the group coordinator)."""

from __future__ import annotations

from outcome import Error

from broker.acls import ResourceType, authorized, authorized_names
from broker.authorized_operations import AclOperation
from broker.groups import OffsetAndMetadata
from broker.handlers.base import Services, handles
from broker.handlers.groups import check_group
from broker.handlers.offsets import denial, existing_partitions, topics_answer
from broker.topics import INTERNAL_TOPICS
from broker.transactions import by_topic, offsets_partition
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.messages.transactions import (
    ADD_OFFSETS_TO_TXN_RESPONSE,
    ADD_PARTITIONS_TO_TXN_RESPONSE,
    DESCRIBE_TRANSACTIONS_RESPONSE,
    END_TXN_RESPONSE,
    LIST_TRANSACTIONS_RESPONSE,
    TXN_OFFSET_COMMIT_RESPONSE,
)

# AddPartitionsToTxn v4+ carries a batch of transactions (from brokers, KIP-890), each maybe
# verify_only. Before v2 of AddPartitionsToTxn, AddOffsetsToTxn and EndTxn, and v4 of
# InitProducerId, clients do not know PRODUCER_FENCED. TxnOffsetCommit before v2 does not know
# COORDINATOR_LOAD_IN_PROGRESS, and from v4 it knows TRANSACTION_ABORTABLE.
FIRST_BATCHED_ADD_PARTITIONS_VERSION = 4
FIRST_PRODUCER_FENCED_VERSION = 2
FIRST_LOAD_IN_PROGRESS_COMMIT_VERSION = 2
FIRST_ABORTABLE_COMMIT_VERSION = 4
NO_METADATA = ""


def check_transactional_id(broker: Services, operation: AclOperation, transactional_id: str) -> None:
    """Raises TRANSACTIONAL_ID_AUTHORIZATION_FAILED unless the session may perform `operation` on it."""
    if not authorized(broker.authorizer, operation, ResourceType.TRANSACTIONAL_ID, transactional_id):
        raise ApiError(ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)


def fenced_for(version: int, first_fenced_version: int, exc: ApiError) -> ApiError:
    """`exc` as a client of `version` understands it: PRODUCER_FENCED is INVALID_PRODUCER_EPOCH
    before `first_fenced_version`, as Kafka answers older clients."""
    if exc.code is ErrorCode.PRODUCER_FENCED and version < first_fenced_version:
        return ApiError(ErrorCode.INVALID_PRODUCER_EPOCH, exc.message)
    return exc


_TopicResult = ADD_PARTITIONS_TO_TXN_RESPONSE.AddPartitionsToTxnTopicResult
_PartitionResult = ADD_PARTITIONS_TO_TXN_RESPONSE.AddPartitionsToTxnPartitionResult


async def _add_partitions(broker: Services, version: int, transactional_id: str, producer_id: int,
                          producer_epoch: int, verify_only: bool, request_topics) -> list:
    """One transaction's partitions added (or verified): the per-topic results. From a client
    (before v4) the transactional id needs WRITE, or every partition is answered
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED. A partition of a topic it may not WRITE (an internal
    topic never: no client may write one), or that does not exist, fails the whole transaction's
    request (Kafka's KafkaApis): it is answered TOPIC_AUTHORIZATION_FAILED or
    UNKNOWN_TOPIC_OR_PARTITION, and the others OPERATION_NOT_ATTEMPTED."""
    wanted = list(dict.fromkeys((topic.name, index) for topic in request_topics for index in topic.partitions))
    from_client = version < FIRST_BATCHED_ADD_PARTITIONS_VERSION
    writable = authorized_names(broker.authorizer, AclOperation.WRITE, ResourceType.TOPIC,
                                (name for name, _ in wanted if name not in INTERNAL_TOPICS)) if from_client else None
    refused = {}
    for name, index in wanted:
        if writable is not None and name not in writable:
            refused[name, index] = ErrorCode.TOPIC_AUTHORIZATION_FAILED
        elif broker.topics.partition(name, index) is None:
            refused[name, index] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    if from_client and not authorized(broker.authorizer, AclOperation.WRITE, ResourceType.TRANSACTIONAL_ID,
                                      transactional_id):
        codes = dict.fromkeys(wanted, ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED)
    elif refused:
        codes = {partition: refused.get(partition, ErrorCode.OPERATION_NOT_ATTEMPTED) for partition in wanted}
    else:
        try:
            if verify_only:
                codes = broker.transactions.verify_partitions(transactional_id, producer_id, producer_epoch, wanted)
            else:
                await broker.transactions.add_partitions(transactional_id, producer_id, producer_epoch, wanted)
                codes = dict.fromkeys(wanted, ErrorCode.NONE)
        except ApiError as exc:
            codes = dict.fromkeys(wanted, fenced_for(version, FIRST_PRODUCER_FENCED_VERSION, exc).code)
    topics: dict[str, list] = {}
    for (name, index), code in codes.items():
        topics.setdefault(name, []).append(_PartitionResult(partition_index=index, partition_error_code=code))
    return [_TopicResult(name=name, results_by_partition=partitions) for name, partitions in topics.items()]


@handles(ApiKey.ADD_PARTITIONS_TO_TXN)
async def add_partitions_to_txn(broker: Services, header, request):
    version = header.request_api_version
    # v4+ come from brokers, as KIP-890 verification: the whole request needs CLUSTER_ACTION.
    if version >= FIRST_BATCHED_ADD_PARTITIONS_VERSION and not authorized(
            broker.authorizer, AclOperation.CLUSTER_ACTION, ResourceType.CLUSTER):
        raise ApiError(ErrorCode.CLUSTER_AUTHORIZATION_FAILED)
    if version < FIRST_BATCHED_ADD_PARTITIONS_VERSION:
        return ADD_PARTITIONS_TO_TXN_RESPONSE(results_by_topic_v3_and_below=await _add_partitions(
            broker, version, request.v3_and_below_transactional_id, request.v3_and_below_producer_id,
            request.v3_and_below_producer_epoch, False, request.v3_and_below_topics))
    result = ADD_PARTITIONS_TO_TXN_RESPONSE.AddPartitionsToTxnResult
    return ADD_PARTITIONS_TO_TXN_RESPONSE(results_by_transaction=[
        result(transactional_id=transaction.transactional_id, topic_results=await _add_partitions(
            broker, version, transaction.transactional_id, transaction.producer_id, transaction.producer_epoch,
            transaction.verify_only, transaction.topics))
        for transaction in request.transactions])


@handles(ApiKey.ADD_OFFSETS_TO_TXN)
async def add_offsets_to_txn(broker: Services, header, request):
    check_transactional_id(broker, AclOperation.WRITE, request.transactional_id)
    check_group(broker, AclOperation.READ, request.group_id)
    try:
        await broker.transactions.add_partitions(request.transactional_id, request.producer_id, request.producer_epoch,
                                                 [offsets_partition(request.group_id)])
    except ApiError as exc:
        raise fenced_for(header.request_api_version, FIRST_PRODUCER_FENCED_VERSION, exc)
    return ADD_OFFSETS_TO_TXN_RESPONSE()


@handles(ApiKey.END_TXN)
async def end_txn(broker: Services, header, request):
    check_transactional_id(broker, AclOperation.WRITE, request.transactional_id)
    try:
        producer_id, producer_epoch = await broker.transactions.end_transaction(
            request.transactional_id, request.producer_id, request.producer_epoch, request.committed)
    except ApiError as exc:
        raise fenced_for(header.request_api_version, FIRST_PRODUCER_FENCED_VERSION, exc)
    # v5 carries the producer id and epoch: the same ones, as the epoch is bumped only by
    # InitProducerId here (no transaction.version 2, whose EndTxn bumps it).
    return END_TXN_RESPONSE(producer_id=producer_id, producer_epoch=producer_epoch)


@handles(ApiKey.TXN_OFFSET_COMMIT)
async def txn_offset_commit(broker: Services, header, request):
    version = header.request_api_version
    now = broker.clock()
    # Kafka's checks, each failing every partition: the transactional id, then the group.
    named, results = existing_partitions(broker, request.topics, denial(
        lambda: check_transactional_id(broker, AclOperation.WRITE, request.transactional_id),
        lambda: check_group(broker, AclOperation.READ, request.group_id)))
    offsets = {key: OffsetAndMetadata(partition.committed_offset, partition.get("committed_leader_epoch", -1),
                                      partition.committed_metadata or NO_METADATA, now)
               for _, partition, key in named if key not in results}
    if offsets:
        try:
            # KIP-890 part 1: the offsets partition must be in the transaction (AddOffsetsToTxn).
            async with broker.transactions.committing_offsets(
                    request.transactional_id, request.producer_id, request.producer_epoch, request.group_id,
                    abortable=version >= FIRST_ABORTABLE_COMMIT_VERSION):
                results.update(await broker.coordinator.commit_transactional_offsets(
                    request.group_id, request.get("generation_id", -1), request.get("member_id", ""),
                    request.get("group_instance_id"), request.producer_id, request.producer_epoch, offsets))
        except ApiError as exc:
            if exc.code is ErrorCode.COORDINATOR_LOAD_IN_PROGRESS and version < FIRST_LOAD_IN_PROGRESS_COMMIT_VERSION:
                exc = ApiError(ErrorCode.COORDINATOR_NOT_AVAILABLE, exc.message)
            # TxnOffsetCommit has no top-level error: every partition carries it.
            results.update(dict.fromkeys(offsets, Error(exc)))
    return TXN_OFFSET_COMMIT_RESPONSE(topics=topics_answer(
        TXN_OFFSET_COMMIT_RESPONSE.TxnOffsetCommitResponseTopic,
        TXN_OFFSET_COMMIT_RESPONSE.TxnOffsetCommitResponsePartition, [key for _, _, key in named], results))


_DescribedState = DESCRIBE_TRANSACTIONS_RESPONSE.TransactionState
_DescribedTopic = DESCRIBE_TRANSACTIONS_RESPONSE.TopicData


def _described(broker: Services, transactional_id: str):
    """A transaction described, with the partitions of the topics the session may describe."""
    try:
        check_transactional_id(broker, AclOperation.DESCRIBE, transactional_id)
        txn = broker.transactions.describe(transactional_id)
    except ApiError as exc:
        return _DescribedState(transactional_id=transactional_id, error_code=exc.code)
    topics = by_topic(txn.partitions)
    describable = authorized_names(broker.authorizer, AclOperation.DESCRIBE, ResourceType.TOPIC, topics)
    return _DescribedState(
        transactional_id=transactional_id, transaction_state=txn.state.label, transaction_timeout_ms=txn.timeout_ms,
        transaction_start_time_ms=txn.start_ms, producer_id=txn.producer_id, producer_epoch=txn.producer_epoch,
        topics=[_DescribedTopic(topic=name, partitions=indexes) for name, indexes in topics.items()
                if name in describable])


@handles(ApiKey.DESCRIBE_TRANSACTIONS)
async def describe_transactions(broker: Services, header, request):
    return DESCRIBE_TRANSACTIONS_RESPONSE(transaction_states=[
        _described(broker, transactional_id) for transactional_id in request.transactional_ids])


@handles(ApiKey.LIST_TRANSACTIONS)
async def list_transactions(broker: Services, header, request):
    listed, unknown_states = broker.transactions.list_transactions(
        request.state_filters, request.producer_id_filters, request.get("duration_filter", -1))
    # The transactional ids the session may describe, as Kafka lists them.
    describable = authorized_names(broker.authorizer, AclOperation.DESCRIBE, ResourceType.TRANSACTIONAL_ID,
                                   (txn.transactional_id for txn in listed))
    listed = [txn for txn in listed if txn.transactional_id in describable]
    return LIST_TRANSACTIONS_RESPONSE(unknown_state_filters=unknown_states, transaction_states=[
        LIST_TRANSACTIONS_RESPONSE.TransactionState(transactional_id=txn.transactional_id,
                                                    producer_id=txn.producer_id, transaction_state=txn.state.label)
        for txn in listed])
