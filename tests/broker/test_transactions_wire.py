"""The transaction APIs on the wire, every version, against a broker served in the test: the
answers Kafka gives, including to requests for unknown ids, with wrong epochs, for unknown
partitions or out of order, after each of which the broker goes on serving the connection."""

from __future__ import annotations

import pytest
import trio.testing

from broker.config import BrokerConfig
from protocol import records
from protocol.errors import ErrorCode
from protocol.messages import REQUESTS, ApiKey
from wire_client import WireClient

TOPIC = "comlog"
TIMEOUT_MS = 60_000
_ADD = REQUESTS[ApiKey.ADD_PARTITIONS_TO_TXN]
_TXN_COMMIT = REQUESTS[ApiKey.TXN_OFFSET_COMMIT]


def versions(api_key: ApiKey) -> list[int]:
    low, high = REQUESTS[api_key].valid_versions
    return list(range(low, high + 1))


@pytest.fixture
def broker_config(tmp_path):
    return BrokerConfig(port=0, data_dir=tmp_path / "data", num_partitions=2)


async def call(client: WireClient, api_key: ApiKey, version: int, **fields):
    return await client.request(api_key, version, REQUESTS[api_key](**fields))


async def init(client: WireClient, transactional_id: str, version: int = 4, *, timeout_ms: int = TIMEOUT_MS,
               producer_id: int = -1, producer_epoch: int = -1):
    return await call(client, ApiKey.INIT_PRODUCER_ID, version, transactional_id=transactional_id,
                      transaction_timeout_ms=timeout_ms, producer_id=producer_id, producer_epoch=producer_epoch)


async def producer(client: WireClient, transactional_id: str) -> tuple[int, int]:
    response = await init(client, transactional_id)
    assert response.error_code == ErrorCode.NONE
    return response.producer_id, response.producer_epoch


def add_topics(partitions: list[tuple[str, int]]) -> list:
    topics: dict[str, list[int]] = {}
    for name, index in partitions:
        topics.setdefault(name, []).append(index)
    return [_ADD.AddPartitionsToTxnTopic(name=name, partitions=indexes) for name, indexes in topics.items()]


async def add(client: WireClient, transactional_id: str, producer_id: int, epoch: int,
              partitions: list[tuple[str, int]], version: int = 3) -> dict[tuple[str, int], ErrorCode]:
    """AddPartitionsToTxn v0-3: each partition's error code."""
    response = await call(client, ApiKey.ADD_PARTITIONS_TO_TXN, version, v3_and_below_transactional_id=transactional_id,
                          v3_and_below_producer_id=producer_id, v3_and_below_producer_epoch=epoch,
                          v3_and_below_topics=add_topics(partitions))
    return result_codes(response.results_by_topic_v3_and_below)


def result_codes(topic_results) -> dict[tuple[str, int], ErrorCode]:
    return {(topic.name, partition.partition_index): partition.partition_error_code
            for topic in topic_results for partition in topic.results_by_partition}


async def end(client: WireClient, transactional_id: str, producer_id: int, epoch: int, commit: bool = True,
              version: int = 3):
    return await call(client, ApiKey.END_TXN, version, transactional_id=transactional_id, producer_id=producer_id,
                      producer_epoch=epoch, committed=commit)


async def produce(client: WireClient, transactional_id: str | None, producer_id: int, epoch: int, sequence: int,
                  partition: int = 0) -> ErrorCode:
    batch = records.build_batch([records.Record(value=b"v", timestamp=1_000)], producer_id=producer_id,
                                producer_epoch=epoch, base_sequence=sequence, transactional=True)
    response = await client.request(ApiKey.PRODUCE, 9, {
        "transactional_id": transactional_id, "acks": -1, "timeout_ms": 5000,
        "topic_data": [{"name": TOPIC, "partition_data": [{"index": partition, "records": batch}]}]})
    return response.responses[0].partition_responses[0].error_code


async def assert_serving(client: WireClient) -> None:
    response = await call(client, ApiKey.API_VERSIONS, 3, client_software_name="t", client_software_version="1")
    assert response.error_code == ErrorCode.NONE


async def test_the_transaction_apis_are_advertised(client):
    response = await call(client, ApiKey.API_VERSIONS, 3, client_software_name="t", client_software_version="1")
    table = {api.api_key: (api.min_version, api.max_version) for api in response.api_keys}
    for api_key in (ApiKey.ADD_PARTITIONS_TO_TXN, ApiKey.ADD_OFFSETS_TO_TXN, ApiKey.END_TXN, ApiKey.TXN_OFFSET_COMMIT,
                    ApiKey.DESCRIBE_TRANSACTIONS, ApiKey.LIST_TRANSACTIONS):
        assert table[api_key] == tuple(REQUESTS[api_key].valid_versions)


@pytest.mark.parametrize("version", [v for v in versions(ApiKey.FIND_COORDINATOR) if v >= 1])
async def test_find_coordinator_of_a_transactional_id(client, broker, version):
    if version < 4:
        found = await call(client, ApiKey.FIND_COORDINATOR, version, key="txn", key_type=1)
        # Kafka's message there is Errors.NONE.message().
        assert (found.error_code, found.error_message, found.node_id, found.port) == (
            ErrorCode.NONE, "NONE", 1, broker.port)
    else:
        found = await call(client, ApiKey.FIND_COORDINATOR, version, key_type=1, coordinator_keys=["a", "b"])
        assert [(c.key, c.error_code, c.error_message, c.node_id, c.port) for c in found.coordinators] == [
            ("a", ErrorCode.NONE, "", 1, broker.port), ("b", ErrorCode.NONE, "", 1, broker.port)]


@pytest.mark.parametrize("version", versions(ApiKey.INIT_PRODUCER_ID))
async def test_init_producer_id_with_a_transactional_id(client, version):
    transactional_id = f"init-v{version}"
    first = await init(client, transactional_id, version)
    assert (first.error_code, first.producer_epoch) == (ErrorCode.NONE, 0)
    again = await init(client, transactional_id, version)
    assert (again.error_code, again.producer_id, again.producer_epoch) == (ErrorCode.NONE, first.producer_id, 1)
    too_long = await init(client, transactional_id, version, timeout_ms=15 * 60 * 1000 + 1)
    assert (too_long.error_code, too_long.producer_id, too_long.producer_epoch) == (
        ErrorCode.INVALID_TRANSACTION_TIMEOUT, -1, -1)
    assert (await init(client, "", version)).error_code == ErrorCode.INVALID_REQUEST
    if version >= 3:
        # KIP-360: the producer names the id and epoch it has.
        bumped = await init(client, transactional_id, version, producer_id=first.producer_id, producer_epoch=1)
        assert (bumped.error_code, bumped.producer_epoch) == (ErrorCode.NONE, 2)
        stranger = await init(client, transactional_id, version, producer_id=first.producer_id + 50, producer_epoch=0)
        assert stranger.error_code == (ErrorCode.PRODUCER_FENCED if version >= 4 else ErrorCode.INVALID_PRODUCER_EPOCH)
        half = await init(client, transactional_id, version, producer_id=-1, producer_epoch=3)
        assert half.error_code == ErrorCode.INVALID_REQUEST
    await assert_serving(client)


@pytest.mark.parametrize("version", [v for v in versions(ApiKey.ADD_PARTITIONS_TO_TXN) if v < 4])
async def test_add_partitions_to_txn_v0_to_v3(client, version):
    transactional_id = f"add-v{version}"
    producer_id, epoch = await producer(client, transactional_id)
    assert await add(client, transactional_id, producer_id, epoch, [(TOPIC, 0), (TOPIC, 1)], version) == {
        (TOPIC, 0): ErrorCode.NONE, (TOPIC, 1): ErrorCode.NONE}
    # One unknown partition fails them all: the others were not attempted.
    assert await add(client, transactional_id, producer_id, epoch,
                     [(TOPIC, 0), (TOPIC, 9), ("no-such-topic", 0), ("__consumer_offsets", 0)], version) == {
        (TOPIC, 0): ErrorCode.OPERATION_NOT_ATTEMPTED, (TOPIC, 9): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ("no-such-topic", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ("__consumer_offsets", 0): ErrorCode.TOPIC_AUTHORIZATION_FAILED}
    fenced = ErrorCode.PRODUCER_FENCED if version >= 2 else ErrorCode.INVALID_PRODUCER_EPOCH
    assert await add(client, transactional_id, producer_id, epoch - 1, [(TOPIC, 0)], version) == {(TOPIC, 0): fenced}
    assert await add(client, transactional_id, producer_id + 9, epoch, [(TOPIC, 0)], version) == {
        (TOPIC, 0): ErrorCode.INVALID_PRODUCER_ID_MAPPING}
    assert await add(client, "nobody", producer_id, epoch, [(TOPIC, 0)], version) == {
        (TOPIC, 0): ErrorCode.INVALID_PRODUCER_ID_MAPPING}
    assert await add(client, "", producer_id, epoch, [(TOPIC, 0)], version) == {(TOPIC, 0): ErrorCode.INVALID_REQUEST}
    await assert_serving(client)


@pytest.mark.parametrize("version", [v for v in versions(ApiKey.ADD_PARTITIONS_TO_TXN) if v >= 4])
async def test_add_partitions_to_txn_batched(client, version):
    adding, verifying = f"batch-add-v{version}", f"batch-verify-v{version}"
    add_id, add_epoch = await producer(client, adding)
    verify_id, verify_epoch = await producer(client, verifying)
    assert await add(client, verifying, verify_id, verify_epoch, [(TOPIC, 0)]) == {(TOPIC, 0): ErrorCode.NONE}
    transaction = _ADD.AddPartitionsToTxnTransaction
    response = await call(client, ApiKey.ADD_PARTITIONS_TO_TXN, version, transactions=[
        transaction(transactional_id=adding, producer_id=add_id, producer_epoch=add_epoch, verify_only=False,
                    topics=add_topics([(TOPIC, 1)])),
        transaction(transactional_id=verifying, producer_id=verify_id, producer_epoch=verify_epoch, verify_only=True,
                    topics=add_topics([(TOPIC, 0), (TOPIC, 1)])),
        transaction(transactional_id="nobody", producer_id=add_id, producer_epoch=0, verify_only=True,
                    topics=add_topics([(TOPIC, 0)])),
        transaction(transactional_id=adding, producer_id=add_id, producer_epoch=add_epoch, verify_only=False,
                    topics=add_topics([(TOPIC, 7)]))])
    assert response.error_code == ErrorCode.NONE
    assert [(result.transactional_id, result_codes(result.topic_results)) for result in response.results_by_transaction] == [
        (adding, {(TOPIC, 1): ErrorCode.NONE}),
        (verifying, {(TOPIC, 0): ErrorCode.NONE, (TOPIC, 1): ErrorCode.TRANSACTION_ABORTABLE}),
        ("nobody", {(TOPIC, 0): ErrorCode.INVALID_PRODUCER_ID_MAPPING}),
        (adding, {(TOPIC, 7): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION})]
    await assert_serving(client)


async def txn_offset_commit(client, version: int, transactional_id: str, group: str, producer_id: int, epoch: int,
                            partitions: list[tuple[str, int]]) -> dict[tuple[str, int], ErrorCode]:
    topics: dict[str, list] = {}
    for name, index in partitions:
        topics.setdefault(name, []).append(_TXN_COMMIT.TxnOffsetCommitRequestPartition(
            partition_index=index, committed_offset=42, committed_metadata="m"))
    response = await call(client, ApiKey.TXN_OFFSET_COMMIT, version, transactional_id=transactional_id, group_id=group,
                          producer_id=producer_id, producer_epoch=epoch, topics=[
                              _TXN_COMMIT.TxnOffsetCommitRequestTopic(name=name, partitions=p)
                              for name, p in topics.items()])
    return {(topic.name, partition.partition_index): partition.error_code
            for topic in response.topics for partition in topic.partitions}


async def committed_offset(client, group: str) -> int:
    fetched = await call(client, ApiKey.OFFSET_FETCH, 1, group_id=group,
                         topics=[{"name": TOPIC, "partition_indexes": [0]}])
    return fetched.topics[0].partitions[0].committed_offset


@pytest.mark.parametrize("version", versions(ApiKey.TXN_OFFSET_COMMIT))
async def test_add_offsets_and_txn_offset_commit(client, version):
    """AddOffsetsToTxn and TxnOffsetCommit of the same version (both have v0-4)."""
    transactional_id, group = f"offsets-v{version}", f"group-v{version}"
    producer_id, epoch = await producer(client, transactional_id)
    # KIP-890: offsets of a group not added to the transaction are refused.
    refused = ErrorCode.TRANSACTION_ABORTABLE if version >= 4 else ErrorCode.INVALID_TXN_STATE
    assert await txn_offset_commit(client, version, transactional_id, group, producer_id, epoch, [(TOPIC, 0)]) == {
        (TOPIC, 0): refused}
    add_offsets = {"transactional_id": transactional_id, "producer_id": producer_id, "group_id": group}
    fenced = ErrorCode.PRODUCER_FENCED if version >= 2 else ErrorCode.INVALID_PRODUCER_EPOCH
    assert (await call(client, ApiKey.ADD_OFFSETS_TO_TXN, version, **add_offsets, producer_epoch=epoch + 1)
            ).error_code == fenced
    assert (await call(client, ApiKey.ADD_OFFSETS_TO_TXN, version, **{**add_offsets, "transactional_id": "nobody"},
                       producer_epoch=epoch)).error_code == ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert (await call(client, ApiKey.ADD_OFFSETS_TO_TXN, version, **add_offsets, producer_epoch=epoch)
            ).error_code == ErrorCode.NONE
    assert await txn_offset_commit(client, version, transactional_id, group, producer_id, epoch,
                                   [(TOPIC, 0), (TOPIC, 5), ("no-such-topic", 0)]) == {
        (TOPIC, 0): ErrorCode.NONE, (TOPIC, 5): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        ("no-such-topic", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    assert await txn_offset_commit(client, version, transactional_id, group, producer_id, epoch - 1, [(TOPIC, 0)]) == {
        (TOPIC, 0): ErrorCode.INVALID_PRODUCER_EPOCH}
    # Pending until the transaction commits.
    assert await committed_offset(client, group) == -1
    assert (await end(client, transactional_id, producer_id, epoch)).error_code == ErrorCode.NONE
    # Answered once the commit is logged; the offsets are visible once its markers are written, after.
    await trio.testing.wait_all_tasks_blocked()
    assert await committed_offset(client, group) == 42
    await assert_serving(client)


@pytest.mark.parametrize("version", versions(ApiKey.END_TXN))
async def test_end_txn(client, version):
    transactional_id = f"end-v{version}"
    producer_id, epoch = await producer(client, transactional_id)
    # Out of order: nothing to end yet.
    assert (await end(client, transactional_id, producer_id, epoch, version=version)).error_code == \
        ErrorCode.INVALID_TXN_STATE
    assert await add(client, transactional_id, producer_id, epoch, [(TOPIC, 0)]) == {(TOPIC, 0): ErrorCode.NONE}
    fenced = ErrorCode.PRODUCER_FENCED if version >= 2 else ErrorCode.INVALID_PRODUCER_EPOCH
    assert (await end(client, transactional_id, producer_id, epoch + 1, version=version)).error_code == fenced
    assert (await end(client, transactional_id, producer_id + 5, epoch, version=version)).error_code == \
        ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert (await end(client, "nobody", producer_id, epoch, version=version)).error_code == \
        ErrorCode.INVALID_PRODUCER_ID_MAPPING
    ended = await end(client, transactional_id, producer_id, epoch, version=version)
    assert ended.error_code == ErrorCode.NONE
    if version >= 5:
        assert (ended.producer_id, ended.producer_epoch) == (producer_id, epoch)
    # A retry of the commit is answered as the commit was; aborting it is out of order.
    assert (await end(client, transactional_id, producer_id, epoch, version=version)).error_code == ErrorCode.NONE
    refused = await end(client, transactional_id, producer_id, epoch, commit=False, version=version)
    assert refused.error_code == ErrorCode.INVALID_TXN_STATE
    if version >= 5:
        assert (refused.producer_id, refused.producer_epoch) == (-1, -1)
    await assert_serving(client)


async def test_describe_and_list_transactions(client):
    ongoing_id, ongoing_epoch = await producer(client, "described")
    await add(client, "described", ongoing_id, ongoing_epoch, [(TOPIC, 1), (TOPIC, 0)])
    empty_id, _ = await producer(client, "idle")
    described = await call(client, ApiKey.DESCRIBE_TRANSACTIONS, 0, transactional_ids=["described", "nobody", ""])
    known, unknown, empty = described.transaction_states
    assert (known.error_code, known.transactional_id, known.transaction_state, known.transaction_timeout_ms,
            known.producer_id, known.producer_epoch) == (ErrorCode.NONE, "described", "Ongoing", TIMEOUT_MS,
                                                         ongoing_id, ongoing_epoch)
    assert known.transaction_start_time_ms > 0
    assert [(topic.topic, list(topic.partitions)) for topic in known.topics] == [(TOPIC, [0, 1])]
    assert (unknown.error_code, unknown.transactional_id) == (ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, "nobody")
    assert empty.error_code == ErrorCode.INVALID_REQUEST

    async def listed(version: int, **filters):
        response = await call(client, ApiKey.LIST_TRANSACTIONS, version, **{
            "state_filters": [], "producer_id_filters": [], **filters})
        assert response.error_code == ErrorCode.NONE
        return sorted((s.transactional_id, s.producer_id, s.transaction_state)
                      for s in response.transaction_states), list(response.unknown_state_filters)

    everything = ([("described", ongoing_id, "Ongoing"), ("idle", empty_id, "Empty")], [])
    assert await listed(0) == everything
    assert await listed(0, state_filters=["Empty", "Bogus"]) == ([("idle", empty_id, "Empty")], ["Bogus"])
    assert await listed(0, producer_id_filters=[ongoing_id]) == ([("described", ongoing_id, "Ongoing")], [])
    assert await listed(1, duration_filter=-1) == everything
    # Only those begun longer ago than the filter: the Empty one began never (-1).
    assert await listed(1, duration_filter=3_600_000) == ([("idle", empty_id, "Empty")], [])


async def test_transactional_produce_is_verified_against_the_transaction(client):
    producer_id, epoch = await producer(client, "verified")
    assert await produce(client, "verified", producer_id, epoch, 0) == ErrorCode.INVALID_TXN_STATE
    assert await produce(client, None, producer_id, epoch, 0) == ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    assert await add(client, "verified", producer_id, epoch, [(TOPIC, 0)]) == {(TOPIC, 0): ErrorCode.NONE}
    assert await produce(client, "verified", producer_id, epoch, 0, partition=1) == ErrorCode.INVALID_TXN_STATE
    assert await produce(client, "verified", producer_id, epoch, 0) == ErrorCode.NONE
    # A new instance fences this one: its open transaction is aborted, its late writes refused.
    assert (await init(client, "verified")).error_code == ErrorCode.CONCURRENT_TRANSACTIONS
    assert (await init(client, "verified")).producer_epoch == epoch + 2
    assert await produce(client, "verified", producer_id, epoch, 1) == ErrorCode.INVALID_PRODUCER_EPOCH
    assert (await end(client, "verified", producer_id, epoch)).error_code == ErrorCode.PRODUCER_FENCED
    await assert_serving(client)


async def test_hostile_transactional_requests_are_refused_and_the_broker_goes_on(client, broker):
    # Everything before InitProducerId, for an id never seen.
    mapping = ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert await add(client, "ghost", 0, 0, [(TOPIC, 0)]) == {(TOPIC, 0): mapping}
    assert (await call(client, ApiKey.ADD_OFFSETS_TO_TXN, 3, transactional_id="ghost", producer_id=0, producer_epoch=0,
                       group_id="g")).error_code == mapping
    assert await txn_offset_commit(client, 3, "ghost", "g", 0, 0, [(TOPIC, 0)]) == {(TOPIC, 0): mapping}
    assert (await end(client, "ghost", -1, -1)).error_code == mapping
    # Empty ids, negative and extreme numbers.
    assert (await end(client, "", 0, 0)).error_code == ErrorCode.INVALID_REQUEST
    assert (await call(client, ApiKey.ADD_OFFSETS_TO_TXN, 3, transactional_id="", producer_id=0, producer_epoch=0,
                       group_id="")).error_code == ErrorCode.INVALID_REQUEST
    assert (await init(client, "ghost", timeout_ms=-5)).error_code == ErrorCode.INVALID_TRANSACTION_TIMEOUT
    # Longer than the transaction log's key can hold (a flexible version's string can be).
    assert (await init(client, "x" * 40_000)).error_code == ErrorCode.INVALID_REQUEST
    producer_id, epoch = await producer(client, "ghost")
    assert await add(client, "ghost", producer_id, epoch, [(TOPIC, -1), (TOPIC, 2**31 - 1)]) == {
        (TOPIC, -1): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, (TOPIC, 2**31 - 1): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    assert (await end(client, "ghost", producer_id, 2**15 - 1)).error_code == ErrorCode.PRODUCER_FENCED
    assert (await init(client, "ghost", producer_id=2**63 - 1, producer_epoch=2**15 - 1)).error_code == \
        ErrorCode.PRODUCER_FENCED
    # Nothing of this reached the transaction log: the id is as InitProducerId left it.
    described = broker.transactions.describe("ghost")
    assert (described.state.label, described.producer_epoch, described.partitions) == ("Empty", epoch, set())
    await assert_serving(client)
