"""The compacted keyed internal log under the offsets and transaction state logs: what its owner
is told on replay (transactional batches and markers included), what the log cleaner leaves of it,
damage, fsync."""

from __future__ import annotations

import logging
import struct

import pytest
import trio

from broker.internal_log import InternalLog, InternalLogError, Producer
from log import Log
from log.cleaner import clean
from protocol import records
from protocol.record_batch import ATTRIBUTES_POSITION, TRANSACTIONAL_MASK, write_crc
from protocol.records import ControlType

PRODUCER = Producer(4000, 3)
# A control record's key: version 0, then its type.
ABORT_KEY, COMMIT_KEY = (struct.pack(">hh", 0, control_type) for control_type in ControlType)


class Latest:
    """A KeyedState: each key's latest value, and each producer's pending ones until its marker;
    and what replay told it, in order."""

    def __init__(self) -> None:
        self.values: dict[bytes, bytes] = {}
        self.pending: dict[Producer, dict[bytes, bytes]] = {}
        self.replayed: list[tuple] = []

    @property
    def live_records(self) -> int:
        return len(self.values) + sum(len(pending) for pending in self.pending.values())

    def put(self, producer: Producer | None, key: bytes, value: bytes | None) -> None:
        target = self.values if producer is None else self.pending.setdefault(producer, {})
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value

    def end(self, producer: Producer, control_type: ControlType) -> None:
        pending = self.pending.pop(producer, {})
        if control_type is ControlType.COMMIT:
            self.values.update(pending)

    def replay_record(self, producer, record) -> None:
        self.replayed.append((producer, record.key, record.value))
        self.put(producer, record.key, record.value)

    def replay_marker(self, producer, control_type) -> None:
        self.replayed.append((producer, control_type))
        self.end(producer, control_type)

    def live_entries(self):
        for key, value in self.values.items():
            yield None, (key, value)
        for producer, pending in self.pending.items():
            for key, value in pending.items():
                yield producer, (key, value)


async def write(log: InternalLog, state: Latest, entries, producer: Producer | None = None) -> None:
    await log.append(entries, lambda: [state.put(producer, key, value) for key, value in entries], producer=producer)


def reopen(directory, **options) -> tuple[InternalLog, Latest]:
    state = Latest()
    return InternalLog(directory, state, records_are="entries", **options), state


async def test_replay_tells_the_owner_each_record_with_its_batchs_producer_and_each_marker(tmp_path):
    log, state = reopen(tmp_path / "internal")
    await write(log, state, [(b"a", b"1"), (b"b", b"2")])
    await write(log, state, [(b"a", b"3")], PRODUCER)
    await log.append_marker(PRODUCER, ControlType.COMMIT, lambda: state.end(PRODUCER, ControlType.COMMIT))
    await write(log, state, [(b"b", None)])
    await write(log, state, [(b"c", b"4")], Producer(4001, 0))
    await log.append_marker(Producer(4001, 1), ControlType.ABORT,
                            lambda: state.end(Producer(4001, 0), ControlType.ABORT))
    log.close()
    reopened, replayed = reopen(tmp_path / "internal")
    assert replayed.replayed == [
        (None, b"a", b"1"), (None, b"b", b"2"), (PRODUCER, b"a", b"3"), (PRODUCER, ControlType.COMMIT),
        (None, b"b", None), (Producer(4001, 0), b"c", b"4"), (Producer(4001, 1), ControlType.ABORT)]
    assert replayed.values == state.values == {b"a": b"3"}
    assert reopened.log_records == 7
    reopened.close()


def batches_of(directory) -> list[tuple[bool, bool, int, int, list]]:
    """(transactional, control, producer id, producer epoch, keys) of each batch in the log."""
    found = []
    with Log(directory) as log:
        offset = log.log_start_offset
        while offset < log.log_end_offset:
            data = bytes(log.read(offset, 1 << 20))
            for header, batch in records.iter_batches(data):
                found.append((header.is_transactional, header.is_control, header.producer_id, header.producer_epoch,
                              [record.key for record in records.iter_records(batch)]))
                offset = header.next_offset
    return found


def clean_now(internal: InternalLog) -> bool:
    """A pass of the broker's log cleaner, run here; whether the log wanted one."""
    plan = internal.cleaning_plan(1 << 20)
    if plan is None:
        return False
    internal.replace_segments(clean(plan))
    return True


async def test_the_cleaner_keeps_an_open_transaction_and_what_follows_it(tmp_path):
    log, state = reopen(tmp_path / "internal", min_dead_records=4)
    for value in range(3):
        await write(log, state, [(b"k", b"%d" % value)])
    await write(log, state, [(b"open", b"1")], PRODUCER)
    for value in range(3, 6):
        await write(log, state, [(b"k", b"%d" % value)])
    # Cleaned are whole segments below the open transaction: none yet.
    assert not clean_now(log)
    assert log.log_records == 7
    await log.append_marker(PRODUCER, ControlType.COMMIT, lambda: state.end(PRODUCER, ControlType.COMMIT))
    await write(log, state, [(b"k", b"last")])
    assert clean_now(log)
    log.close()
    # The committed batch stays with its marker; of each key only its latest record is left.
    assert batches_of(tmp_path / "internal") == [
        (True, False, PRODUCER.producer_id, PRODUCER.producer_epoch, [b"open"]),
        (True, True, PRODUCER.producer_id, PRODUCER.producer_epoch, [COMMIT_KEY]),
        (False, False, -1, -1, [b"k"])]
    reopened, replayed = reopen(tmp_path / "internal")
    assert (replayed.values, replayed.pending) == ({b"k": b"last", b"open": b"1"}, {})
    assert reopened.log_records == 3
    reopened.close()


async def test_the_cleaner_removes_aborted_records_and_then_tombstones_and_markers(tmp_path):
    log, state = reopen(tmp_path / "internal", min_dead_records=2)
    await write(log, state, [(b"gone", b"1"), (b"k", b"1")])
    await write(log, state, [(b"k", b"aborted")], PRODUCER)
    await log.append_marker(PRODUCER, ControlType.ABORT, lambda: state.end(PRODUCER, ControlType.ABORT))
    await write(log, state, [(b"gone", None)])
    assert clean_now(log)
    # The aborted record went; its marker and the tombstone stay for one pass.
    assert [keys for *_, keys in batches_of(tmp_path / "internal")] == [[b"k"], [ABORT_KEY], [b"gone"]]
    for value in range(2):
        await write(log, state, [(b"k", b"%d" % value)])
    assert clean_now(log)
    # The tombstone went; the marker, its transaction now empty, gets its delete horizon...
    assert [keys for *_, keys in batches_of(tmp_path / "internal")] == [[ABORT_KEY], [b"k"]]
    for value in range(2):
        await write(log, state, [(b"k", b"%d" % value)])
    assert clean_now(log)  # ...and goes in the pass after, as in Kafka
    assert [keys for *_, keys in batches_of(tmp_path / "internal")] == [[b"k"]]
    log.close()
    reopened, replayed = reopen(tmp_path / "internal")
    assert (replayed.values, replayed.pending, reopened.log_records) == ({b"k": b"1"}, {}, 1)
    reopened.close()


async def test_writes_waiting_together_share_one_fsync(tmp_path, monkeypatch):
    log, state = reopen(tmp_path / "internal", fsync=True)
    flushes = []
    real_flush = Log.flush

    def counted(self):
        flushes.append(self.log_end_offset)
        return real_flush(self)

    monkeypatch.setattr(Log, "flush", counted)
    async with trio.open_nursery() as nursery:
        for index in range(5):
            nursery.start_soon(write, log, state, [(b"k%d" % index, b"v")])
    assert log._log.flushed_offset == log._log.log_end_offset == 5
    # Writes appended while an fsync runs wait for it, then share the next one.
    assert len(flushes) <= 2 and flushes[-1] == 5
    log.close()


async def test_a_write_without_fsync_is_not_flushed(tmp_path):
    log, state = reopen(tmp_path / "internal")
    await write(log, state, [(b"k", b"v")])
    assert log._log.flushed_offset == 0
    log.close()


def append_raw(directory, *batches: bytes) -> None:
    with Log(directory) as log:
        for batch in batches:
            log.append(batch)


def test_a_control_batch_outside_a_transaction_stops_the_start(tmp_path):
    marker = bytearray(records.build_control_batch(ControlType.COMMIT, producer_id=1, producer_epoch=0,
                                                   coordinator_epoch=0, timestamp=0))
    # The same marker without the transactional bit (the low byte of the int16 attributes).
    marker[ATTRIBUTES_POSITION + 1] &= ~TRANSACTIONAL_MASK
    write_crc(marker, len(marker))
    append_raw(tmp_path / "internal", bytes(marker))
    with pytest.raises(InternalLogError, match="not transactional"):
        reopen(tmp_path / "internal")


def test_a_record_without_a_key_stops_the_start(tmp_path):
    append_raw(tmp_path / "internal", records.build_batch([records.Record(None, b"value")]))
    with pytest.raises(InternalLogError, match="has no key"):
        reopen(tmp_path / "internal")


def test_a_damaged_batch_loses_only_its_own_records(tmp_path, caplog):
    batches = [records.build_batch([records.Record(b"k", value)]) for value in (b"1", b"2", b"3")]
    append_raw(tmp_path / "internal", *batches)
    segment = next((tmp_path / "internal").glob("*.log"))
    data = bytearray(segment.read_bytes())
    data[len(batches[0]) + len(batches[1]) - 1] ^= 0xFF  # the second batch's last value byte
    segment.write_bytes(data)
    with caplog.at_level(logging.WARNING):
        log, state = reopen(tmp_path / "internal")
    assert [value for _, _, value in state.replayed] == [b"1", b"3"]
    assert "the entries at offsets 1 to 1 are lost to damage" in caplog.text
    log.close()
