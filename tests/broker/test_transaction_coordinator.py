"""The transaction coordinator's state machine, driven directly on a real broker (its partitions,
its group coordinator, its transaction state log), with transactional batches produced over a
socket so that the markers have transactions to end. Timeouts and expiry run on trio's mock
clock, moved by hand (`mock_clock`: an autojumping one would also jump while the broker waits for
a worker thread, and time out its connections); restarts reopen the broker on the same data
directory."""

from __future__ import annotations

import inspect

import pytest
import trio
import trio.testing

from broker.config import BrokerConfig
from broker.groups import OffsetAndMetadata
from broker.server import Broker
from broker.transactions import OFFSETS_PARTITION, TransactionState
from broker.transactions.coordinator import MARKER_RETRY_SECONDS, MARKERS_WAIT_SECONDS
from protocol import records
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from wire_client import WireClient

TXN = "txn"
TOPIC = "comlog"
TIMEOUT_MS = 60_000
EXPIRATION_MS = 24 * 60 * 60 * 1000
MAX_TIMEOUT_MS = 15 * 60 * 1000


@pytest.fixture
def broker_config(tmp_path):
    return BrokerConfig(port=0, data_dir=tmp_path / "data", num_partitions=2,
                        transactional_id_expiration_ms=EXPIRATION_MS)


@pytest.fixture
def transactions(broker):
    return broker.transactions


async def refusal(call, *args, **kwargs) -> ErrorCode:
    """The error code `call(*args)` (a coroutine function or not) is refused with."""
    with pytest.raises(ApiError) as refused:
        result = call(*args, **kwargs)
        if inspect.isawaitable(result):
            await result
    return refused.value.code


async def produce(client, producer_id: int, epoch: int, partition: int, sequence: int = 0, *,
                  transactional_id: str | None = TXN, topic: str = TOPIC) -> ErrorCode:
    """A transactional batch of one record; its error code."""
    batch = records.build_batch([records.Record(value=b"v", timestamp=1_000)], producer_id=producer_id,
                                producer_epoch=epoch, base_sequence=sequence, transactional=True)
    response = await client.request(ApiKey.PRODUCE, 9, {
        "transactional_id": transactional_id, "acks": -1, "timeout_ms": 5000,
        "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": batch}]}]})
    return ErrorCode(response.responses[0].partition_responses[0].error_code)


async def batches(client, partition: int, topic: str = TOPIC) -> list:
    """The headers of the partition's batches, read uncommitted, each with its control type (None
    for data), fetched segment after segment (a fetch stops at the end of one)."""
    found, offset, end = [], 0, None
    while end is None or offset < end:
        response = await client.request(ApiKey.FETCH, 12, {
            "replica_id": -1, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
            "topics": [{"topic": topic, "partitions": [{"partition": partition, "fetch_offset": offset,
                                                        "partition_max_bytes": 1 << 20}]}]})
        fetched = response.responses[0].partitions[0]
        end = fetched.high_watermark
        for header, batch in records.iter_batches(bytes(fetched.records or b"")):
            found.append((header, records.control_type(batch) if header.is_control else None))
            offset = header.next_offset
    return found


def markers(found: list) -> list:
    return [control for _, control in found if control is not None]


async def begin(transactions, client, partitions=(0,), transactional_id: str = TXN, timeout_ms: int = TIMEOUT_MS):
    """A producer with a transaction holding a batch in each of `partitions`: its id and epoch."""
    producer_id, epoch = await transactions.init_producer_id(transactional_id, timeout_ms)
    await transactions.add_partitions(transactional_id, producer_id, epoch, [(TOPIC, p) for p in partitions])
    for partition in partitions:
        assert await produce(client, producer_id, epoch, partition, transactional_id=transactional_id) == ErrorCode.NONE
    return producer_id, epoch


async def advance(clock, seconds: float) -> None:
    """Move the mock clock on, and let what fell due run until everything waits again."""
    clock.jump(seconds)
    await trio.testing.wait_all_tasks_blocked()


def state(transactions, transactional_id: str = TXN) -> TransactionState:
    return transactions.describe(transactional_id).state


async def end(transactions, producer_id: int, epoch: int, commit: bool, transactional_id: str = TXN) -> None:
    """EndTxn, answered once PrepareCommit/PrepareAbort is logged, as Kafka answers it; then its
    markers are written, after the answer."""
    assert await transactions.end_transaction(transactional_id, producer_id, epoch, commit) == (producer_id, epoch)
    prepared = TransactionState.PREPARE_COMMIT if commit else TransactionState.PREPARE_ABORT
    assert state(transactions, transactional_id) is prepared
    await trio.testing.wait_all_tasks_blocked()
    assert state(transactions, transactional_id) is not prepared


async def test_each_transactional_id_has_a_producer_id_whose_epoch_each_init_bumps(transactions):
    first = await transactions.init_producer_id(TXN, TIMEOUT_MS)
    assert first[1] == 0
    assert await transactions.init_producer_id(TXN, TIMEOUT_MS) == (first[0], 1)
    other = await transactions.init_producer_id("other", TIMEOUT_MS)
    assert other[0] != first[0] and other[1] == 0
    described = transactions.describe(TXN)
    assert (described.state, described.producer_id, described.producer_epoch, described.timeout_ms) == (
        TransactionState.EMPTY, first[0], 1, TIMEOUT_MS)
    # Without a transactional id: a new producer id at epoch 0 every time, as before.
    idempotent = [await transactions.init_producer_id(None, 0) for _ in range(2)]
    assert idempotent[0][0] != idempotent[1][0] and {epoch for _, epoch in idempotent} == {0}


async def test_the_transaction_timeout_and_the_id_are_checked(transactions):
    assert await refusal(transactions.init_producer_id, TXN, 0) == ErrorCode.INVALID_TRANSACTION_TIMEOUT
    assert await refusal(transactions.init_producer_id, TXN, MAX_TIMEOUT_MS + 1) == ErrorCode.INVALID_TRANSACTION_TIMEOUT
    assert await transactions.init_producer_id(TXN, MAX_TIMEOUT_MS)
    assert await refusal(transactions.init_producer_id, "", TIMEOUT_MS) == ErrorCode.INVALID_REQUEST


async def test_a_commit_writes_a_commit_marker_to_each_partition(transactions, client, broker):
    producer_id, epoch = await begin(transactions, client, partitions=(0, 1))
    assert state(transactions) is TransactionState.ONGOING
    assert transactions.describe(TXN).partitions == {(TOPIC, 0), (TOPIC, 1)}
    partition = broker.topics.partition(TOPIC, 0)
    assert partition.last_stable_offset == 0 < partition.log.log_end_offset
    await end(transactions, producer_id, epoch, True)
    described = transactions.describe(TXN)
    assert (described.state, described.partitions) == (TransactionState.COMPLETE_COMMIT, set())
    for index in (0, 1):
        assert markers(await batches(client, index)) == [records.ControlType.COMMIT]
        partition = broker.topics.partition(TOPIC, index)
        assert partition.last_stable_offset == partition.log.log_end_offset
    # The next transaction of the same producer begins from CompleteCommit.
    await transactions.add_partitions(TXN, producer_id, epoch, [(TOPIC, 1)])
    assert transactions.describe(TXN).partitions == {(TOPIC, 1)}


async def test_an_abort_writes_abort_markers_and_records_the_aborted_transaction(transactions, client, broker):
    producer_id, epoch = await begin(transactions, client)
    await end(transactions, producer_id, epoch, False)
    assert state(transactions) is TransactionState.COMPLETE_ABORT
    assert markers(await batches(client, 0)) == [records.ControlType.ABORT]
    log = broker.topics.partition(TOPIC, 0).log
    assert [(a.producer_id, a.first_offset) for a in log.aborted_transactions(0, log.log_end_offset)] == [(producer_id, 0)]


async def test_end_txn_retried_or_out_of_order_is_answered_as_kafka(transactions, client):
    producer_id, epoch = await transactions.init_producer_id(TXN, TIMEOUT_MS)
    # Nothing to end in Empty.
    assert await refusal(transactions.end_transaction, TXN, producer_id, epoch, True) == ErrorCode.INVALID_TXN_STATE
    await transactions.add_partitions(TXN, producer_id, epoch, [(TOPIC, 0)])
    await transactions.end_transaction(TXN, producer_id, epoch, True)
    # A retry of the commit is answered as the commit was, once its markers are written; an abort
    # of it is refused.
    assert await transactions.end_transaction(TXN, producer_id, epoch, True) == (producer_id, epoch)
    assert await refusal(transactions.end_transaction, TXN, producer_id, epoch, False) == ErrorCode.INVALID_TXN_STATE
    await transactions.add_partitions(TXN, producer_id, epoch, [(TOPIC, 0)])
    await transactions.end_transaction(TXN, producer_id, epoch, False)
    assert await transactions.end_transaction(TXN, producer_id, epoch, False) == (producer_id, epoch)
    assert await refusal(transactions.end_transaction, TXN, producer_id, epoch, True) == ErrorCode.INVALID_TXN_STATE


async def test_unknown_ids_other_producers_and_old_epochs_are_refused(transactions):
    producer_id, epoch = await transactions.init_producer_id(TXN, TIMEOUT_MS)
    await transactions.init_producer_id(TXN, TIMEOUT_MS)
    partitions = [(TOPIC, 0)]
    assert await refusal(transactions.add_partitions, "nobody", producer_id, epoch, partitions) == \
        ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert await refusal(transactions.add_partitions, TXN, producer_id + 100, epoch + 1, partitions) == \
        ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert await refusal(transactions.add_partitions, TXN, producer_id, epoch, partitions) == ErrorCode.PRODUCER_FENCED
    assert await refusal(transactions.add_partitions, "", producer_id, epoch, partitions) == ErrorCode.INVALID_REQUEST
    assert await refusal(transactions.end_transaction, "nobody", producer_id, epoch, True) == \
        ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert await refusal(transactions.end_transaction, TXN, producer_id, epoch, True) == ErrorCode.PRODUCER_FENCED
    assert await refusal(transactions.end_transaction, TXN, producer_id, epoch + 5, True) == ErrorCode.PRODUCER_FENCED
    assert state(transactions) is TransactionState.EMPTY


async def test_a_new_producer_fences_the_ongoing_transaction_which_is_aborted(transactions, client):
    producer_id, epoch = await begin(transactions, client)
    # The new instance is told to retry while the old one's transaction is aborted at a bumped epoch.
    assert await refusal(transactions.init_producer_id, TXN, TIMEOUT_MS) == ErrorCode.CONCURRENT_TRANSACTIONS
    described = transactions.describe(TXN)
    assert (described.state, described.producer_epoch) == (TransactionState.PREPARE_ABORT, epoch + 1)
    await trio.testing.wait_all_tasks_blocked()
    assert transactions.describe(TXN).state is TransactionState.COMPLETE_ABORT
    found = await batches(client, 0)
    assert [(header.producer_epoch, control) for header, control in found if control is not None] == [
        (epoch + 1, records.ControlType.ABORT)]
    assert await transactions.init_producer_id(TXN, TIMEOUT_MS) == (producer_id, epoch + 2)
    # The zombie: each of its requests meets the new epoch.
    assert await refusal(transactions.add_partitions, TXN, producer_id, epoch, [(TOPIC, 1)]) == ErrorCode.PRODUCER_FENCED
    assert await refusal(transactions.end_transaction, TXN, producer_id, epoch, True) == ErrorCode.PRODUCER_FENCED
    assert await produce(client, producer_id, epoch, 0, 1) == ErrorCode.INVALID_PRODUCER_EPOCH


async def test_kip_360_a_producer_naming_its_id_and_epoch(transactions):
    producer_id, epoch = await transactions.init_producer_id(TXN, TIMEOUT_MS)
    bumped = await transactions.init_producer_id(TXN, TIMEOUT_MS, (producer_id, epoch))
    assert bumped == (producer_id, epoch + 1)
    # The retry of that request (its answer lost) gets the same epoch, not another bump.
    assert await transactions.init_producer_id(TXN, TIMEOUT_MS, (producer_id, epoch)) == bumped
    assert await transactions.init_producer_id(TXN, TIMEOUT_MS, bumped) == (producer_id, epoch + 2)
    # An older epoch, or another producer id, is a fenced producer.
    assert await refusal(transactions.init_producer_id, TXN, TIMEOUT_MS, (producer_id, epoch)) == \
        ErrorCode.PRODUCER_FENCED
    assert await refusal(transactions.init_producer_id, TXN, TIMEOUT_MS, (producer_id + 1, 0)) == \
        ErrorCode.PRODUCER_FENCED
    # A producer recovering from UNKNOWN_PRODUCER_ID on a new transactional id gets that id's producer id.
    recovered = await transactions.init_producer_id("new", TIMEOUT_MS, (producer_id, 7))
    assert recovered[0] != producer_id and recovered[1] == 0


async def test_an_exhausted_epoch_takes_a_new_producer_id(transactions):
    producer_id, _ = await transactions.init_producer_id(TXN, TIMEOUT_MS)
    transactions.transactions[TXN].producer_epoch = 32_765
    assert await transactions.init_producer_id(TXN, TIMEOUT_MS) == (producer_id, 32_766)
    rotated, epoch = await transactions.init_producer_id(TXN, TIMEOUT_MS, (producer_id, 32_766))
    assert rotated != producer_id and epoch == 0
    # The retry naming the old producer id and its exhausted epoch gets the new one again.
    assert await transactions.init_producer_id(TXN, TIMEOUT_MS, (producer_id, 32_766)) == (rotated, 0)


def disk_full(*args):
    raise ApiError(ErrorCode.KAFKA_STORAGE_ERROR, "disk full")


async def in_background(nursery, call, *args) -> list:
    """Start `call(*args)` and let it run until it waits: [its ApiError's code] once it is
    refused, [its result] once it returns, [] while it waits."""
    outcome = []

    async def run():
        try:
            outcome.append(await call(*args))
        except ApiError as exc:
            outcome.append(exc.code)

    nursery.start_soon(run)
    await trio.testing.wait_all_tasks_blocked()
    return outcome


async def test_while_markers_are_written_the_transaction_is_concurrent(transactions, client, broker, nursery,
                                                                         monkeypatch, mock_clock):
    producer_id, epoch = await begin(transactions, client)
    partition = broker.topics.partition(TOPIC, 0)
    monkeypatch.setattr(partition, "write_marker", disk_full)
    # The commit is decided once logged: answered then, whatever becomes of its markers.
    assert await transactions.end_transaction(TXN, producer_id, epoch, True) == (producer_id, epoch)
    assert state(transactions) is TransactionState.PREPARE_COMMIT
    concurrent = ErrorCode.CONCURRENT_TRANSACTIONS
    # The producer's requests wait for the markers a while, then are told to retry.
    waiting = [await in_background(nursery, transactions.init_producer_id, TXN, TIMEOUT_MS),
               await in_background(nursery, transactions.add_partitions, TXN, producer_id, epoch, [(TOPIC, 1)]),
               await in_background(nursery, transactions.end_transaction, TXN, producer_id, epoch, True),
               await in_background(nursery, transactions.end_transaction, TXN, producer_id, epoch, False)]
    assert waiting == [[], [], [], []]
    await advance(mock_clock, MARKERS_WAIT_SECONDS)
    assert waiting == [[concurrent]] * 4
    # A produce is told to retry at once, an offset commit that the transaction is busy.
    assert await refusal(transactions.verify_partition, TXN, producer_id, epoch, TOPIC, 0) == \
        ErrorCode.NOT_ENOUGH_REPLICAS
    assert await refusal(transactions.verify_offsets, TXN, producer_id, epoch, "group") == concurrent
    # Once the markers are written, the next transaction that waited for them goes on.
    added = await in_background(nursery, transactions.add_partitions, TXN, producer_id, epoch, [(TOPIC, 1)])
    monkeypatch.undo()
    await advance(mock_clock, MARKER_RETRY_SECONDS)
    assert added == [None]
    assert markers(await batches(client, 0)) == [records.ControlType.COMMIT]
    assert (state(transactions), transactions.describe(TXN).partitions) == (TransactionState.ONGOING, {(TOPIC, 1)})


async def test_a_transaction_past_its_timeout_is_aborted_with_a_bumped_epoch(transactions, client, mock_clock):
    producer_id, epoch = await begin(transactions, client, timeout_ms=10_000)
    await advance(mock_clock, 9)
    assert state(transactions) is TransactionState.ONGOING
    await advance(mock_clock, 2)
    described = transactions.describe(TXN)
    assert (described.state, described.producer_id, described.producer_epoch) == (
        TransactionState.COMPLETE_ABORT, producer_id, epoch + 1)
    assert markers(await batches(client, 0)) == [records.ControlType.ABORT]
    assert await refusal(transactions.end_transaction, TXN, producer_id, epoch, True) == ErrorCode.PRODUCER_FENCED
    # The id is kept: the producer's next InitProducerId goes on from there.
    assert await transactions.init_producer_id(TXN, TIMEOUT_MS) == (producer_id, epoch + 2)


async def test_an_idle_transactional_id_expires(transactions, mock_clock):
    producer_id, epoch = await transactions.init_producer_id(TXN, TIMEOUT_MS)
    await advance(mock_clock, EXPIRATION_MS / 1000 - 1)
    await transactions.add_partitions(TXN, producer_id, epoch, [(TOPIC, 0)])
    await end(transactions, producer_id, epoch, True)
    await advance(mock_clock, EXPIRATION_MS / 1000 - 1)
    assert state(transactions) is TransactionState.COMPLETE_COMMIT
    await advance(mock_clock, 2)
    assert await refusal(transactions.describe, TXN) == ErrorCode.TRANSACTIONAL_ID_NOT_FOUND
    assert await refusal(transactions.add_partitions, TXN, producer_id, epoch, [(TOPIC, 0)]) == \
        ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert (await transactions.init_producer_id(TXN, TIMEOUT_MS))[0] != producer_id


async def test_verification_of_produce_and_of_offsets(transactions):
    producer_id, epoch = await transactions.init_producer_id(TXN, TIMEOUT_MS)
    verify = transactions.verify_partition
    assert await refusal(verify, TXN, producer_id, epoch, TOPIC, 0) == ErrorCode.INVALID_TXN_STATE
    await transactions.add_partitions(TXN, producer_id, epoch, [(TOPIC, 0)])
    await verify(TXN, producer_id, epoch, TOPIC, 0)
    assert await refusal(verify, TXN, producer_id, epoch, TOPIC, 1) == ErrorCode.INVALID_TXN_STATE
    assert await refusal(verify, TXN, producer_id, epoch - 1, TOPIC, 0) == ErrorCode.INVALID_PRODUCER_EPOCH
    assert await refusal(verify, TXN, producer_id + 1, epoch, TOPIC, 0) == ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert await refusal(verify, "nobody", producer_id, epoch, TOPIC, 0) == ErrorCode.INVALID_PRODUCER_ID_MAPPING
    offsets = transactions.verify_offsets
    assert await refusal(offsets, TXN, producer_id, epoch, "group") == ErrorCode.INVALID_TXN_STATE
    assert await refusal(offsets, TXN, producer_id, epoch, "group", abortable=True) == ErrorCode.TRANSACTION_ABORTABLE
    await transactions.add_partitions(TXN, producer_id, epoch, [OFFSETS_PARTITION])
    offsets(TXN, producer_id, epoch, "group")
    assert await refusal(offsets, TXN, producer_id, epoch - 1, "group") == ErrorCode.INVALID_PRODUCER_EPOCH
    assert transactions.verify_partitions(TXN, producer_id, epoch, [(TOPIC, 0), (TOPIC, 1)]) == {
        (TOPIC, 0): ErrorCode.NONE, (TOPIC, 1): ErrorCode.TRANSACTION_ABORTABLE}


async def test_offsets_verified_before_the_end_land_before_its_marker(transactions, broker, nursery):
    producer_id, epoch = await transactions.init_producer_id(TXN, TIMEOUT_MS)
    await transactions.add_partitions(TXN, producer_id, epoch, [OFFSETS_PARTITION])
    verified, written = trio.Event(), trio.Event()

    async def commit_offsets():
        async with transactions.committing_offsets(TXN, producer_id, epoch, "group"):
            verified.set()
            # Still to be written (the offsets log busy) when the transaction ends.
            await written.wait()
            await broker.coordinator.commit_transactional_offsets(
                "group", -1, "", None, producer_id, epoch, {(TOPIC, 0): OffsetAndMetadata(7, -1, "", 0)})

    async def commit():
        await transactions.end_transaction(TXN, producer_id, epoch, True)

    nursery.start_soon(commit_offsets)
    await verified.wait()
    nursery.start_soon(commit)
    await trio.testing.wait_all_tasks_blocked()
    assert state(transactions) is TransactionState.PREPARE_COMMIT
    written.set()
    await trio.testing.wait_all_tasks_blocked()
    assert state(transactions) is TransactionState.COMPLETE_COMMIT
    assert broker.coordinator.fetch_offsets("group", [(TOPIC, 0)])[TOPIC, 0].unwrap().offset == 7


async def test_a_partition_deleted_before_its_marker_is_skipped(transactions, client, broker):
    await broker.topics.create("doomed", 1, 1, [], {})
    producer_id, epoch = await transactions.init_producer_id(TXN, TIMEOUT_MS)
    await transactions.add_partitions(TXN, producer_id, epoch, [(TOPIC, 0), ("doomed", 0)])
    assert await produce(client, producer_id, epoch, 0, topic="doomed") == ErrorCode.NONE
    await broker.topics.delete(broker.topics.get("doomed"))
    await end(transactions, producer_id, epoch, True)
    assert state(transactions) is TransactionState.COMPLETE_COMMIT


async def test_describe_and_list(transactions, client, monkeypatch):
    assert await refusal(transactions.describe, "nobody") == ErrorCode.TRANSACTIONAL_ID_NOT_FOUND
    assert await refusal(transactions.describe, "") == ErrorCode.INVALID_REQUEST
    ongoing, _ = await begin(transactions, client)
    empty, _ = await transactions.init_producer_id("empty", TIMEOUT_MS)
    described = transactions.describe(TXN)
    assert described.start_ms > 0 and described.timeout_ms == TIMEOUT_MS

    def listed(*args):
        found, unknown = transactions.list_transactions(*args)
        return sorted((txn.transactional_id, txn.state.label) for txn in found), unknown

    assert listed([], []) == ([("empty", "Empty"), (TXN, "Ongoing")], [])
    assert listed(["Ongoing", "Nonsense"], []) == ([(TXN, "Ongoing")], ["Nonsense"])
    assert listed([], [empty]) == ([("empty", "Empty")], [])
    # The duration filter keeps transactions begun longer ago than it (strictly, as Kafka's);
    # Empty began at -1. The coordinator's clock is set, so that no millisecond has to pass.
    monkeypatch.setattr(transactions, "clock", lambda: described.start_ms)
    assert listed([], [], 0) == ([("empty", "Empty")], [])
    monkeypatch.setattr(transactions, "clock", lambda: described.start_ms + 60_000)
    assert listed([], [], 60_000) == ([("empty", "Empty")], [])
    assert listed([], [], 59_999) == ([("empty", "Empty"), (TXN, "Ongoing")], [])
    assert ongoing != empty


async def test_a_prepare_commit_is_completed_after_a_restart(broker_config, monkeypatch, mock_clock):
    async with Broker(broker_config) as broker, trio.open_nursery() as nursery:
        await nursery.start(broker.serve)
        client = await WireClient.connect(broker.port)
        producer_id, epoch = await begin(broker.transactions, client, partitions=(0, 1))
        monkeypatch.setattr(broker.topics.partition(TOPIC, 1), "write_marker", disk_full)
        await broker.transactions.end_transaction(TXN, producer_id, epoch, True)
        await trio.testing.wait_all_tasks_blocked()
        assert state(broker.transactions) is TransactionState.PREPARE_COMMIT
        assert markers(await batches(client, 0)) == [records.ControlType.COMMIT]
        assert markers(await batches(client, 1)) == []
        await client.aclose()
        broker.stop()
    async with Broker(broker_config) as broker, trio.open_nursery() as nursery:
        await nursery.start(broker.serve)
        await trio.testing.wait_all_tasks_blocked()
        assert state(broker.transactions) is TransactionState.COMPLETE_COMMIT
        client = await WireClient.connect(broker.port)
        # Each partition has its marker once: the one written before the restart is not repeated.
        assert markers(await batches(client, 0)) == [records.ControlType.COMMIT]
        assert markers(await batches(client, 1)) == [records.ControlType.COMMIT]
        assert await broker.transactions.init_producer_id(TXN, TIMEOUT_MS) == (producer_id, epoch + 1)
        await client.aclose()
        broker.stop()


async def test_ongoing_transactions_time_out_from_their_start_after_a_restart(broker_config, mock_clock):
    now = [1_000_000]
    async with Broker(broker_config, clock=lambda: now[0]) as broker, trio.open_nursery() as nursery:
        await nursery.start(broker.serve)
        client = await WireClient.connect(broker.port)
        for transactional_id, timeout_ms in (("soon", 20_000), ("overdue", 5_000), ("resumed", 600_000)):
            await begin(broker.transactions, client, transactional_id=transactional_id, timeout_ms=timeout_ms)
        await client.aclose()
        broker.stop()
    # Down for 10 s.
    now[0] += 10_000
    async with Broker(broker_config, clock=lambda: now[0]) as broker, trio.open_nursery() as nursery:
        await nursery.start(broker.serve)
        await trio.testing.wait_all_tasks_blocked()
        assert state(broker.transactions, "overdue") is TransactionState.COMPLETE_ABORT
        await advance(mock_clock, 9)
        assert state(broker.transactions, "soon") is TransactionState.ONGOING
        await advance(mock_clock, 1)
        assert state(broker.transactions, "soon") is TransactionState.COMPLETE_ABORT
        # The other one resumes: its producer may still commit it.
        resumed = broker.transactions.describe("resumed")
        assert resumed.state is TransactionState.ONGOING
        await end(broker.transactions, resumed.producer_id, resumed.producer_epoch, True, "resumed")
        assert state(broker.transactions, "resumed") is TransactionState.COMPLETE_COMMIT
        broker.stop()
