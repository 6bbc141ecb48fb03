from broker.producer_state import ProducerStateTable, write_snapshot_text
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
