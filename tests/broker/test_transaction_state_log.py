"""The transaction state store: durable across reopen, tombstones, compaction, every value version
Kafka declares, and refusal of what it cannot read."""

from __future__ import annotations

import os

import pytest

from broker.internal_log import InternalLogError
from test_internal_log import clean_now
from broker.transactions.state_log import (
    TRANSACTION_STATE_DIRECTORY,
    TransactionLogEntry,
    TransactionStateStore,
    decode_value,
    encode_key,
    encode_value,
)
from log import Log
from protocol import records
from protocol.messages.transaction_data import TRANSACTION_LOG_VALUE

ONGOING, COMPLETE_COMMIT, EMPTY = 1, 4, 0


def entry(epoch: int = 0, state: int = ONGOING, partitions=None, **changes) -> TransactionLogEntry:
    fields = dict(producer_id=4000, producer_epoch=epoch, timeout_ms=60_000, state=state,
                  partitions={"t": [0, 2], "u": [1]} if partitions is None else partitions,
                  last_update_ms=1_700_000_000_500 + epoch, start_ms=1_700_000_000_000)
    return TransactionLogEntry(**(fields | changes))


def reopen(store: TransactionStateStore, **options) -> TransactionStateStore:
    store.close()
    return TransactionStateStore(store.directory.parent, **options)


async def test_states_come_back_exactly_after_a_reopen(tmp_path):
    store = TransactionStateStore(tmp_path)
    await store.write("a", entry(0))
    await store.write("b", entry(0, EMPTY, {}, previous_producer_id=3999, next_producer_id=4001))
    await store.write("a", entry(1, COMPLETE_COMMIT))
    expected = {"a": entry(1, COMPLETE_COMMIT), "b": entry(0, EMPTY, {}, previous_producer_id=3999,
                                                            next_producer_id=4001)}
    assert store.entries() == expected
    reopened = reopen(store)
    assert reopened.entries() == expected
    assert reopened.log_records == 3
    assert sorted(os.listdir(tmp_path)) == [TRANSACTION_STATE_DIRECTORY]
    reopened.close()


async def test_a_removed_transactional_id_stays_removed(tmp_path):
    store = TransactionStateStore(tmp_path)
    await store.write("expired", entry())
    await store.write("kept", entry())
    await store.remove("expired")
    assert list(store.entries()) == ["kept"]
    reopened = reopen(store)
    assert list(reopened.entries()) == ["kept"]
    reopened.close()


async def test_superseded_states_are_cleaned_away(tmp_path):
    store = TransactionStateStore(tmp_path, min_dead_records=10)
    for epoch in range(100):
        await store.write("a", entry(epoch))
        await store.write("b", entry(epoch))
        clean_now(store.internal_log)  # as the broker's log cleaner does on each check
        assert store.log_records <= 2 + 10 + 2
    await store.remove("b")
    reopened = reopen(store, min_dead_records=10)
    assert reopened.entries() == {"a": entry(99)}
    reopened.close()


async def test_fsync_writes_are_flushed_before_returning(tmp_path):
    store = TransactionStateStore(tmp_path, fsync=True)
    await store.write("a", entry())
    assert store._log._log.flushed_offset == store._log._log.log_end_offset == 1
    store.close()


@pytest.mark.parametrize("version", [0, 1])
def test_values_of_every_version_kafka_declares_are_read(version):
    fields = TRANSACTION_LOG_VALUE(
        producer_id=7, previous_producer_id=6, next_producer_id=8, producer_epoch=3, transaction_timeout_ms=900,
        transaction_status=2, transaction_partitions=[TRANSACTION_LOG_VALUE.PartitionsSchema(topic="t", partition_ids=[1]),
                                                      TRANSACTION_LOG_VALUE.PartitionsSchema(topic="t", partition_ids=[4])],
        transaction_last_update_timestamp_ms=20, transaction_start_timestamp_ms=10)
    data = version.to_bytes(2, "big") + TRANSACTION_LOG_VALUE.encode(version, fields)
    # Version 0 has no tagged fields: the previous and next producer ids are unknown.
    assert decode_value(data) == TransactionLogEntry(7, 3, 900, 2, {"t": [1, 4]}, 20, 10,
                                                     6 if version else -1, 8 if version else -1)


def test_no_partitions_are_written_as_null_as_kafka_writes_them_for_empty():
    data = encode_value(entry(state=EMPTY, partitions={}))
    assert TRANSACTION_LOG_VALUE.decode(1, data, 2).transaction_partitions is None
    assert decode_value(data) == entry(state=EMPTY, partitions={})


def append_raw(directory, batch: bytes) -> None:
    with Log(directory / TRANSACTION_STATE_DIRECTORY) as log:
        log.append(batch)


@pytest.mark.parametrize("batch", [
    records.build_batch([records.Record(encode_key("a"), b"\x00\x09garbage")]),
    records.build_batch([records.Record(b"\x00\x03x", encode_value(entry()))]),
    records.build_batch([records.Record(encode_key("a"), encode_value(entry()))], transactional=True,
                        producer_id=1, producer_epoch=0),
    records.build_control_batch(records.ControlType.COMMIT, producer_id=1, producer_epoch=0, coordinator_epoch=0,
                                timestamp=0),
], ids=["bad value version", "bad key version", "transactional batch", "marker"])
def test_what_the_state_log_cannot_hold_stops_the_start_with_a_clear_error(tmp_path, batch):
    append_raw(tmp_path, batch)
    with pytest.raises(InternalLogError):
        TransactionStateStore(tmp_path)

