"""Transactions in a partition: ongoing transactions and the last stable offset, the markers that
end them, the aborted ones in the transaction index, and all of it rebuilt at a restart, clean or
after a crash; then read_committed Fetch and ListOffsets, transactional Produce and DescribeProducers,
over a socket."""

import pytest
import trio
import trio.testing

from broker.config import BrokerConfig
from broker.registry import TopicRegistry
from log import AbortedTxn
from protocol import records
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from protocol.record_batch import parse_header

TOPIC = "comlog"
PID, OTHER = 7, 8


def append(partition, values, *, producer_id=-1, epoch=0, sequence=0, transactional=False, timestamp=None):
    """What Produce appends once it has checked the batch (and verified a transactional one). By
    default the records are stamped now, as the markers are: a segment holds segment.ms of time."""
    timestamp = partition.clock() if timestamp is None else timestamp
    batch = records.build_batch([records.Record(value=v, timestamp=timestamp) for v in values],
                                producer_id=producer_id, producer_epoch=epoch,
                                base_sequence=sequence if producer_id >= 0 else -1, transactional=transactional)
    appended = partition.log.append(batch)
    partition.producers.record(producer_id, epoch, sequence, appended.base_offset, appended.last_offset, timestamp,
                               transactional)
    return appended.base_offset


def append_txn(partition, producer_id, values, **kwargs):
    return append(partition, values, producer_id=producer_id, transactional=True, **kwargs)


def open_registry(data_dir):
    registry = TopicRegistry(data_dir, BrokerConfig(port=0, data_dir=data_dir), clock=lambda: 5_000)
    registry.load()
    return registry


@pytest.fixture
async def registry(tmp_path):
    registry = open_registry(tmp_path)
    await registry.create_topic("txn", 1)
    yield registry
    await registry.close()


class TestMarkers:
    async def test_the_last_stable_offset_is_the_oldest_ongoing_transactions_first_offset(self, registry):
        partition = registry.partition("txn", 0)
        append(partition, [b"plain"])
        assert partition.last_stable_offset == 1
        append_txn(partition, PID, [b"a", b"b"])
        append_txn(partition, OTHER, [b"c"])
        append(partition, [b"plain"])
        assert (partition.last_stable_offset, partition.log.log_end_offset) == (1, 5)
        assert partition.write_marker(PID, 0, 0, commit=True)
        assert partition.last_stable_offset == 3
        assert partition.write_marker(OTHER, 0, 0, commit=True)
        assert partition.last_stable_offset == partition.log.log_end_offset == 7

    async def test_the_last_stable_offset_is_not_below_the_log_start(self, registry):
        partition = registry.partition("txn", 0)
        append_txn(partition, PID, [b"a"])
        append(partition, [b"b", b"c"])
        await partition.delete_records(2)
        assert partition.last_stable_offset == 2

    async def test_a_marker_is_a_control_batch_of_the_producer_at_the_log_end(self, registry):
        partition = registry.partition("txn", 0)
        append_txn(partition, PID, [b"a"], epoch=2)
        assert partition.write_marker(PID, 2, 9, commit=False)
        batch = bytes(partition.log.read(1, 1 << 20))
        header = parse_header(batch)
        assert (header.base_offset, header.producer_id, header.producer_epoch) == (1, PID, 2)
        assert header.is_control and header.is_transactional and header.max_timestamp == 5_000
        assert records.control_type(batch) == records.ControlType.ABORT
        entry = partition.producers.producers[PID]
        assert (entry.coordinator_epoch, entry.last_timestamp, entry.current_txn_first_offset) == (9, 5_000, None)

    async def test_an_abort_is_recorded_in_the_transaction_index(self, registry):
        partition = registry.partition("txn", 0)
        append_txn(partition, PID, [b"a", b"b"])        # 0-1
        append_txn(partition, OTHER, [b"c"])            # 2
        partition.write_marker(PID, 0, 0, commit=False)  # 3
        partition.write_marker(OTHER, 0, 0, commit=True)  # 4
        assert partition.log.aborted_transactions(0, 5) == [AbortedTxn(PID, 0, 3, 2)]

    async def test_no_marker_without_a_transaction_here(self, registry):
        partition = registry.partition("txn", 0)
        append(partition, [b"a"], producer_id=PID)
        assert not partition.write_marker(PID, 0, 0, commit=True)
        assert not partition.write_marker(OTHER, 0, 0, commit=False)
        assert partition.log.log_end_offset == 1

    async def test_a_marker_of_an_older_epoch_is_refused_and_not_written(self, registry):
        partition = registry.partition("txn", 0)
        append_txn(partition, PID, [b"a"], epoch=3)
        with pytest.raises(ApiError) as refused:
            partition.write_marker(PID, 2, 0, commit=False)
        assert refused.value.code == ErrorCode.INVALID_PRODUCER_EPOCH
        assert partition.log.log_end_offset == 1 and partition.producers.has_ongoing(PID)


def write_transactions(partition):
    """Offsets 0-1: PID's aborted transaction, 2: OTHER's committed one, 3: an idempotent batch,
    4-5: the markers; then 6: PID's next transaction, left open."""
    append_txn(partition, PID, [b"a", b"b"])
    append_txn(partition, OTHER, [b"c"])
    append(partition, [b"d"], producer_id=99)
    partition.write_marker(PID, 0, 0, commit=False)
    partition.write_marker(OTHER, 0, 3, commit=True)
    append_txn(partition, PID, [b"e"], sequence=2)


def assert_rebuilt(partition):
    assert partition.last_stable_offset == 6 and partition.log.log_end_offset == 7
    assert partition.producers.has_ongoing(PID) and not partition.producers.has_ongoing(OTHER)
    assert partition.log.aborted_transactions(0, 7) == [AbortedTxn(PID, 0, 4, 2)]
    # The open transaction goes on: its producer's sequence continues, and its marker ends it.
    assert partition.producers.check(PID, 0, 3, 0, True).error == ErrorCode.NONE
    assert partition.producers.check(99, 0, 1, 0).error == ErrorCode.NONE
    assert partition.producers.producers[OTHER].coordinator_epoch == 3
    assert partition.write_marker(PID, 0, 0, commit=False)
    assert partition.log.aborted_transactions(0, 8)[-1] == AbortedTxn(PID, 6, 7, 8)


class TestRestart:
    async def test_a_clean_restart_reads_the_transactions_from_the_snapshot(self, tmp_path, registry):
        write_transactions(registry.partition("txn", 0))
        await registry.close()
        assert_rebuilt(open_registry(tmp_path).partition("txn", 0))

    async def test_a_crash_without_a_snapshot_replays_the_log(self, tmp_path, registry):
        write_transactions(registry.partition("txn", 0))
        # Killed: no snapshot, no index written, no clean-shutdown marker; the data is on disk.
        registry.partition("txn", 0).log.flush()
        assert_rebuilt(open_registry(tmp_path).partition("txn", 0))

    async def test_a_crash_after_a_snapshot_past_the_markers_replays_from_the_log_start(self, tmp_path, registry):
        # The snapshot holds the state after the markers, but the recovered segment's transaction
        # index is gone: the abort can only be found again by replaying from the start.
        partition = registry.partition("txn", 0)
        write_transactions(partition)
        await registry.maintain(5_000)
        partition.log.flush()
        assert (tmp_path / "txn-0" / "producer-state.snapshot").exists()
        assert_rebuilt(open_registry(tmp_path).partition("txn", 0))

    async def test_a_crash_after_a_snapshot_with_no_marker_below_it_keeps_the_snapshot(self, tmp_path, registry):
        partition = registry.partition("txn", 0)
        append(partition, [b"a"], producer_id=99)
        await registry.maintain(5_000)
        partition.log.flush()
        reopened = open_registry(tmp_path).partition("txn", 0)
        assert reopened.log.transaction_index_end == 0
        # No marker to find again below the snapshot: it is the whole state, and still on disk.
        assert reopened.take_producer_snapshot() is None
        assert reopened.producers.check(99, 0, 1, 0).error == ErrorCode.NONE


# -- over the wire --------------------------------------------------------------------------------

def fetch_body(offset, isolation_level, *, max_wait_ms=0):
    return {"replica_id": -1, "max_wait_ms": max_wait_ms, "min_bytes": 1, "max_bytes": 50 << 20,
            "isolation_level": isolation_level, "session_id": 0, "session_epoch": -1,
            "topics": [{"topic": TOPIC, "partitions": [{"partition": 0, "fetch_offset": offset,
                                                        "partition_max_bytes": 1 << 20}]}],
            "forgotten_topics_data": [], "rack_id": ""}


async def fetch(client, offset, isolation_level, **kwargs):
    response = await client.request(ApiKey.FETCH, 12, fetch_body(offset, isolation_level, **kwargs))
    return response.responses[0].partitions[0]


def offsets_of(record_set):
    return [r.offset for _, b in records.iter_batches(bytes(record_set)) for r in records.iter_records(b)]


async def list_offset(client, timestamp, isolation_level):
    response = await client.request(ApiKey.LIST_OFFSETS, 7, {
        "replica_id": -1, "isolation_level": isolation_level,
        "topics": [{"name": TOPIC, "partitions": [{"partition_index": 0, "timestamp": timestamp}]}]})
    found = response.topics[0].partitions[0]
    return found.offset, found.timestamp


class TestReadCommitted:
    async def test_fetch_stops_at_the_last_stable_offset_and_names_the_aborted_transactions(self, broker, client):
        partition = broker.registry.partition(TOPIC, 0)
        append_txn(partition, PID, [b"a", b"b"])         # 0-1, aborted at 4
        append_txn(partition, OTHER, [b"c"])             # 2, committed at 5
        append(partition, [b"d"])                        # 3
        partition.write_marker(PID, 0, 0, commit=False)
        partition.write_marker(OTHER, 0, 0, commit=True)
        append_txn(partition, PID, [b"e"], sequence=2)   # 6, open
        append(partition, [b"f"])                        # 7

        committed = await fetch(client, 0, 1)
        assert (committed.error_code, committed.high_watermark, committed.last_stable_offset) == (0, 8, 6)
        assert offsets_of(committed.records) == [0, 1, 2, 3, 4, 5]
        assert [(a.producer_id, a.first_offset) for a in committed.aborted_transactions] == [(PID, 0)]
        # From past the aborted one: it no longer overlaps what is read.
        later = await fetch(client, 5, 1)
        assert offsets_of(later.records) == [5] and later.aborted_transactions == []
        # At the last stable offset: nothing yet, and an empty list.
        at_lso = await fetch(client, 6, 1)
        assert len(at_lso.records) == 0 and at_lso.aborted_transactions == []

        uncommitted = await fetch(client, 0, 0)
        assert (uncommitted.high_watermark, uncommitted.last_stable_offset) == (8, 6)
        assert offsets_of(uncommitted.records) == list(range(8)) and uncommitted.aborted_transactions is None

    async def test_a_read_committed_long_poll_wakes_when_the_transaction_commits(self, broker, client, nursery):
        partition = broker.registry.partition(TOPIC, 0)
        answered = trio.Event()
        result = {}

        async def poll():
            result["partition"] = await fetch(client, 0, 1, max_wait_ms=30_000)
            answered.set()

        nursery.start_soon(poll)
        await trio.testing.wait_all_tasks_blocked()
        append_txn(partition, PID, [b"a"])
        broker.appended(partition)
        await trio.testing.wait_all_tasks_blocked()
        assert not answered.is_set()   # the data is there, but not stable yet
        partition.write_marker(PID, 0, 0, commit=True)
        broker.appended(partition)
        with trio.fail_after(10):
            await answered.wait()
        assert offsets_of(result["partition"].records) == [0, 1]
        assert result["partition"].last_stable_offset == 2

    async def test_list_offsets_read_committed_answers_the_last_stable_offset(self, broker, client):
        partition = broker.registry.partition(TOPIC, 0)
        now = broker.clock()
        append(partition, [b"a"], timestamp=now)                  # 0
        append_txn(partition, PID, [b"b"], timestamp=now + 2)     # 1, open
        append(partition, [b"c"], timestamp=now + 1)              # 2
        assert await list_offset(client, -1, 1) == (1, -1)
        assert await list_offset(client, -1, 0) == (3, -1)
        assert await list_offset(client, -2, 1) == (0, -1)
        # By timestamp and max timestamp: a record at or past the last stable offset is not found.
        assert await list_offset(client, now, 1) == (0, now)
        assert await list_offset(client, now + 1, 1) == (-1, -1)
        assert await list_offset(client, now + 1, 0) == (1, now + 2)
        assert await list_offset(client, -3, 1) == (-1, -1)
        assert await list_offset(client, -3, 0) == (1, now + 2)


# -- transactional produce, with the broker's transaction coordinator -----------------------------

TRANSACTIONAL_ID = "txn-producer"


async def init_transactional(client, transactional_id=TRANSACTIONAL_ID):
    response = await client.request(ApiKey.INIT_PRODUCER_ID, 4, {
        "transactional_id": transactional_id, "transaction_timeout_ms": 60_000, "producer_id": -1,
        "producer_epoch": -1})
    assert response.error_code == ErrorCode.NONE
    return response.producer_id, response.producer_epoch


async def add_partition(client, producer_id, epoch, transactional_id=TRANSACTIONAL_ID):
    response = await client.request(ApiKey.ADD_PARTITIONS_TO_TXN, 3, {
        "v3_and_below_transactional_id": transactional_id, "v3_and_below_producer_id": producer_id,
        "v3_and_below_producer_epoch": epoch, "v3_and_below_topics": [{"name": TOPIC, "partitions": [0]}]})
    assert response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code == ErrorCode.NONE


async def end_transaction(client, producer_id, epoch, commit, transactional_id=TRANSACTIONAL_ID):
    response = await client.request(ApiKey.END_TXN, 3, {
        "transactional_id": transactional_id, "producer_id": producer_id, "producer_epoch": epoch,
        "committed": commit})
    assert response.error_code == ErrorCode.NONE


async def produce(client, values, *, producer_id, epoch, sequence=0, transactional=True,
                  transactional_id=TRANSACTIONAL_ID):
    batch = records.build_batch([records.Record(value=v) for v in values], producer_id=producer_id,
                                producer_epoch=epoch, base_sequence=sequence, transactional=transactional)
    response = await client.request(ApiKey.PRODUCE, 9, {
        "transactional_id": transactional_id, "acks": -1, "timeout_ms": 5000,
        "topic_data": [{"name": TOPIC, "partition_data": [{"index": 0, "records": batch}]}]})
    return response.responses[0].partition_responses[0]


class TestTransactionalProduce:
    async def test_a_batch_is_appended_once_the_partition_is_in_the_transaction(self, broker, client):
        producer_id, epoch = await init_transactional(client)
        refused = await produce(client, [b"early"], producer_id=producer_id, epoch=epoch)
        assert refused.error_code == ErrorCode.INVALID_TXN_STATE
        await add_partition(client, producer_id, epoch)
        first = await produce(client, [b"a", b"b"], producer_id=producer_id, epoch=epoch)
        second = await produce(client, [b"c"], producer_id=producer_id, epoch=epoch, sequence=2)
        assert (first.error_code, first.base_offset, second.base_offset) == (ErrorCode.NONE, 0, 2)
        pending = await fetch(client, 0, 1)
        assert (pending.high_watermark, pending.last_stable_offset, len(pending.records)) == (3, 0, 0)
        await end_transaction(client, producer_id, epoch, commit=True)
        committed = await fetch(client, 0, 1)
        assert committed.last_stable_offset == committed.high_watermark == 4
        assert offsets_of(committed.records) == [0, 1, 2, 3] and committed.aborted_transactions == []

    async def test_an_aborted_transaction_is_named_to_read_committed_consumers(self, broker, client):
        producer_id, epoch = await init_transactional(client)
        await add_partition(client, producer_id, epoch)
        await produce(client, [b"a"], producer_id=producer_id, epoch=epoch)
        await end_transaction(client, producer_id, epoch, commit=False)
        aborted = await fetch(client, 0, 1)
        assert aborted.last_stable_offset == 2
        assert [(a.producer_id, a.first_offset) for a in aborted.aborted_transactions] == [(producer_id, 0)]

    async def test_a_transactional_batch_needs_a_transactional_id_and_a_producer_id(self, broker, client):
        producer_id, epoch = await init_transactional(client)
        await add_partition(client, producer_id, epoch)
        no_id = await produce(client, [b"a"], producer_id=producer_id, epoch=epoch, transactional_id=None)
        assert no_id.error_code == ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
        no_producer = await produce(client, [b"a"], producer_id=-1, epoch=-1, sequence=-1)
        assert no_producer.error_code == ErrorCode.INVALID_RECORD
        assert (await fetch(client, 0, 0)).high_watermark == 0

    async def test_a_plain_batch_of_the_producer_inside_its_transaction_is_invalid_txn_state(self, broker, client):
        producer_id, epoch = await init_transactional(client)
        await add_partition(client, producer_id, epoch)
        await produce(client, [b"a"], producer_id=producer_id, epoch=epoch)
        plain = await produce(client, [b"b"], producer_id=producer_id, epoch=epoch, sequence=1, transactional=False)
        assert plain.error_code == ErrorCode.INVALID_TXN_STATE
        assert (await fetch(client, 0, 0)).high_watermark == 1


async def test_describe_producers_names_each_partitions_producers(broker, client):
    partition = broker.registry.partition(TOPIC, 0)
    append(partition, [b"a", b"b"], producer_id=PID, epoch=1, timestamp=1_500)
    append_txn(partition, OTHER, [b"c"], epoch=4, timestamp=1_600)
    response = await client.request(ApiKey.DESCRIBE_PRODUCERS, 0, {"topics": [
        {"name": TOPIC, "partition_indexes": [0, 5]}, {"name": "nope", "partition_indexes": [0]}]})
    [ours, unknown] = response.topics
    [described, missing] = ours.partitions
    assert described.error_code == ErrorCode.NONE
    assert sorted((p.producer_id, p.producer_epoch, p.last_sequence, p.last_timestamp, p.coordinator_epoch,
                   p.current_txn_start_offset) for p in described.active_producers) == [
        (PID, 1, 1, 1_500, -1, -1), (OTHER, 4, 0, 1_600, -1, 2)]
    assert (missing.partition_index, missing.error_code) == (5, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    assert [(p.partition_index, p.error_code) for p in unknown.partitions] == [(0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]
