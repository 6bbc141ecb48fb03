from broker.producer_state import ProducerStateTable, write_snapshot_text
from log import AbortedTxn
from protocol.errors import ErrorCode

PID = 7


def record(table, epoch, first_seq, count, base_offset):
    table.record(PID, epoch, first_seq, base_offset, base_offset + count - 1, 1000)


def test_unknown_producer_may_start_anywhere():
    table = ProducerStateTable()
    assert table.check(PID, 0, 42, 0).error == ErrorCode.NONE


def test_in_sequence_batches_are_appended():
    table = ProducerStateTable()
    record(table, 0, 0, 3, 100)
    check = table.check(PID, 0, 3, 1)
    assert check.error == ErrorCode.NONE and check.duplicate is None


def test_retry_of_a_recent_batch_is_a_duplicate_with_its_original_offsets():
    table = ProducerStateTable()
    for i in range(5):
        record(table, 0, i * 2, 2, 100 + i * 2)
    check = table.check(PID, 0, 2, 1)
    assert check.duplicate is not None
    assert (check.duplicate.base_offset, check.duplicate.last_offset) == (102, 103)


def test_only_the_last_five_batches_are_remembered():
    table = ProducerStateTable()
    for i in range(6):
        record(table, 0, i, 1, i)
    # The first batch (sequence 0) has been forgotten: a retry of it is out of order, not a duplicate.
    assert table.check(PID, 0, 0, 0).error == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert table.check(PID, 0, 1, 0).duplicate is not None


def test_gap_in_sequence_is_out_of_order():
    table = ProducerStateTable()
    record(table, 0, 0, 1, 0)
    assert table.check(PID, 0, 5, 0).error == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_stale_epoch_is_rejected():
    table = ProducerStateTable()
    record(table, 3, 0, 1, 0)
    assert table.check(PID, 2, 1, 0).error == ErrorCode.INVALID_PRODUCER_EPOCH


def test_new_epoch_must_start_at_sequence_zero():
    table = ProducerStateTable()
    record(table, 0, 0, 1, 0)
    assert table.check(PID, 1, 1, 0).error == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert table.check(PID, 1, 0, 0).error == ErrorCode.NONE


def test_sequence_wraps_at_int32_max():
    table = ProducerStateTable()
    record(table, 0, 2**31 - 2, 2, 0)
    assert table.check(PID, 0, 0, 0).error == ErrorCode.NONE


def test_non_idempotent_batches_are_never_checked():
    table = ProducerStateTable()
    assert table.check(-1, -1, -1, 10).error == ErrorCode.NONE


def test_snapshot_round_trip(tmp_path):
    table = ProducerStateTable()
    record(table, 2, 0, 4, 10)
    record(table, 2, 4, 1, 14)
    path = tmp_path / "producer-state.snapshot"
    write_snapshot_text(path, table.snapshot(15))
    restored, log_end_offset = ProducerStateTable.read_snapshot(path)
    assert log_end_offset == 15
    assert restored.check(PID, 2, 4, 0).duplicate.base_offset == 14
    assert restored.check(PID, 2, 5, 0).error == ErrorCode.NONE


def test_unreadable_snapshot_is_ignored(tmp_path):
    path = tmp_path / "producer-state.snapshot"
    path.write_text("{not json")
    assert ProducerStateTable.read_snapshot(path) is None


# -- transactions --------------------------------------------------------------------------------

OTHER = 8


def record_txn(table, producer_id, base_offset, count=1, *, epoch=0, sequence=0):
    table.record(producer_id, epoch, sequence, base_offset, base_offset + count - 1, 2000 + base_offset,
                 transactional=True)


def test_a_transactional_batch_starts_a_transaction_and_its_first_offset_is_unstable():
    table = ProducerStateTable()
    assert table.first_unstable_offset is None and not table.has_ongoing(PID)
    record_txn(table, PID, 10, 3)
    record_txn(table, PID, 13, 2, sequence=3)
    assert table.has_ongoing(PID)
    assert table.first_unstable_offset == 10
    assert table.producers[PID].current_txn_first_offset == 10


def test_the_oldest_ongoing_transaction_holds_the_first_unstable_offset():
    table = ProducerStateTable()
    record_txn(table, PID, 10)
    record_txn(table, OTHER, 11)
    table.record(99, 0, 0, 12, 12, 1)   # an idempotent producer's batch between them
    assert table.first_unstable_offset == 10
    # The older one ends: the other's first offset is the first unstable one now.
    assert table.complete_transaction(PID, 0, 0, 13, commit=True, timestamp=5) is None
    assert table.first_unstable_offset == 11
    assert table.complete_transaction(OTHER, 0, 0, 14, commit=True, timestamp=5) is None
    assert table.first_unstable_offset is None


def test_an_abort_gives_its_index_entry_with_the_last_stable_offset_after_it():
    table = ProducerStateTable()
    record_txn(table, PID, 10, 2)
    record_txn(table, OTHER, 12)
    # Another transaction is still open: the LSO after this abort is its first offset.
    assert table.complete_transaction(PID, 0, 0, 13, commit=False, timestamp=5) == AbortedTxn(PID, 10, 13, 12)
    # None left open: the LSO is the offset after the marker.
    assert table.complete_transaction(OTHER, 0, 0, 14, commit=False, timestamp=5) == AbortedTxn(OTHER, 12, 14, 15)


def test_a_marker_of_a_producer_without_a_transaction_here_ends_nothing():
    table = ProducerStateTable()
    table.record(PID, 0, 0, 0, 0, 1)
    assert table.complete_transaction(PID, 0, 0, 1, commit=False, timestamp=5) is None
    assert table.first_unstable_offset is None


def test_a_marker_sets_the_producers_epoch_coordinator_epoch_and_timestamp():
    table = ProducerStateTable()
    record_txn(table, PID, 0, 2)
    # The coordinator aborts with a bumped epoch (fencing): sequences start again at 0.
    table.complete_transaction(PID, 1, 4, 2, commit=False, timestamp=7_000)
    entry = table.producers[PID]
    assert (entry.epoch, entry.coordinator_epoch, entry.last_timestamp) == (1, 4, 7_000)
    assert table.check(PID, 0, 2, 0, True).error == ErrorCode.INVALID_PRODUCER_EPOCH
    assert table.check(PID, 1, 2, 0, True).error == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER
    assert table.check(PID, 1, 0, 0, True).error == ErrorCode.NONE


def test_markers_of_an_older_producer_epoch_or_coordinator_are_fenced():
    table = ProducerStateTable()
    record_txn(table, PID, 0, epoch=3)
    table.complete_transaction(PID, 3, 5, 1, commit=True, timestamp=1)
    assert table.check_marker(PID, 2, 5) == ErrorCode.INVALID_PRODUCER_EPOCH
    assert table.check_marker(PID, 3, 4) == ErrorCode.TRANSACTION_COORDINATOR_FENCED
    assert table.check_marker(PID, 3, 5) == ErrorCode.NONE
    assert table.check_marker(OTHER, 0, 0) == ErrorCode.NONE


def test_a_plain_batch_inside_an_ongoing_transaction_is_invalid_txn_state():
    table = ProducerStateTable()
    record_txn(table, PID, 0, 2)
    assert table.check(PID, 0, 2, 0).error == ErrorCode.INVALID_TXN_STATE
    assert table.check(PID, 0, 2, 0, True).error == ErrorCode.NONE
    # A retry of a batch already written is still answered as a duplicate.
    assert table.check(PID, 0, 0, 1).duplicate is not None


def test_a_batch_after_the_transaction_ended_starts_the_next_one():
    table = ProducerStateTable()
    record_txn(table, PID, 0)
    table.complete_transaction(PID, 0, 0, 1, commit=True, timestamp=1)
    assert table.check(PID, 0, 1, 0).error == ErrorCode.NONE
    record_txn(table, PID, 2, sequence=1)
    assert table.first_unstable_offset == 2


def test_a_verification_is_void_once_the_producers_transaction_ends():
    table = ProducerStateTable()
    token = table.start_verification(PID)
    assert table.start_verification(PID) is token  # verifications in flight together share one
    assert table.verified(PID, token)
    table.cancel_verification(PID)   # the coordinator ended the transaction meanwhile
    assert not table.verified(PID, token)
    token = table.start_verification(PID)
    table.complete_transaction(PID, 0, 0, 0, commit=False, timestamp=1)
    assert not table.verified(PID, token)
    # Once its transaction has a batch here, nothing needs verifying.
    record_txn(table, PID, 1)
    assert table.verified(PID, object())


def test_snapshot_round_trip_keeps_ongoing_transactions_in_order(tmp_path):
    table = ProducerStateTable()
    record_txn(table, OTHER, 20)
    record_txn(table, PID, 10)        # replayed after a restart: not in offset order
    table.record(99, 1, 0, 30, 31, 1000)
    record_txn(table, 55, 40)
    table.complete_transaction(55, 0, 6, 41, commit=True, timestamp=9_000)
    path = tmp_path / "producer-state.snapshot"
    write_snapshot_text(path, table.snapshot(42))
    restored, log_end_offset = ProducerStateTable.read_snapshot(path)
    assert log_end_offset == 42
    assert restored.first_unstable_offset == 10
    assert restored.has_ongoing(PID) and restored.has_ongoing(OTHER) and not restored.has_ongoing(55)
    assert restored.complete_transaction(PID, 0, 0, 42, commit=False, timestamp=1) == AbortedTxn(PID, 10, 42, 20)
    assert (restored.producers[55].coordinator_epoch, restored.producers[55].last_timestamp) == (6, 9_000)
    assert restored.check(99, 1, 2, 0).error == ErrorCode.NONE


def test_a_snapshot_from_before_transactions_is_still_read(tmp_path):
    path = tmp_path / "producer-state.snapshot"
    path.write_text('{"log_end_offset": 15, "producers": {"7": {"epoch": 2, "batches": [[0, 3, 10, 13, 1000]]}}}')
    restored, log_end_offset = ProducerStateTable.read_snapshot(path)
    assert log_end_offset == 15 and restored.first_unstable_offset is None
    entry = restored.producers[PID]
    assert (entry.epoch, entry.last_sequence, entry.last_timestamp, entry.coordinator_epoch) == (2, 3, 1000, -1)
    assert restored.check(PID, 2, 4, 0).error == ErrorCode.NONE
