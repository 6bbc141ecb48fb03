"""The compacted keyed internal log under the offsets and transaction state logs: what its owner
is told on replay (transactional batches and markers included), compaction, damage, fsync."""

from __future__ import annotations

import logging

import pytest
import trio

from broker.internal_log import InternalLog, InternalLogError, Producer
from log import Log
from protocol import records
from protocol.record_batch import ATTRIBUTES_POSITION, TRANSACTIONAL_MASK, write_crc
from protocol.records import ControlType

PRODUCER = Producer(4000, 3)


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
    with Log(directory) as log:
        data = bytes(log.read(log.log_start_offset, 1 << 20))
    return [(header.is_transactional, header.is_control, header.producer_id, header.producer_epoch,
             [record.key for record in records.iter_records(batch)])
            for header, batch in records.iter_batches(data)]


async def test_compaction_keeps_open_transactions_as_transactional_batches_of_their_producer(tmp_path):
    log, state = reopen(tmp_path / "internal", min_dead_records=4)
    await write(log, state, [(b"open", b"1")], PRODUCER)
    await write(log, state, [(b"done", b"1")], Producer(5, 0))
    await log.append_marker(Producer(5, 0), ControlType.COMMIT, lambda: state.end(Producer(5, 0), ControlType.COMMIT))
    for value in range(3):
        await write(log, state, [(b"k", b"%d" % value)])
    # Live: k, done, open; dead: two superseded k, the marker: not yet as many as the live ones.
    assert log.log_records == 6
    await write(log, state, [(b"k", b"last")])
    assert log.log_records == 3
    log.close()
    assert batches_of(tmp_path / "internal") == [
        (False, False, -1, -1, [b"done", b"k"]), (True, False, PRODUCER.producer_id, PRODUCER.producer_epoch, [b"open"])]
    reopened, replayed = reopen(tmp_path / "internal")
    assert (replayed.values, replayed.pending) == ({b"done": b"1", b"k": b"last"}, {PRODUCER: {b"open": b"1"}})
    await reopened.append_marker(PRODUCER, ControlType.COMMIT, lambda: None)
    reopened.close()
    again, replayed = reopen(tmp_path / "internal")
    assert (replayed.values, replayed.pending) == ({b"done": b"1", b"k": b"last", b"open": b"1"}, {})
    again.close()


async def test_compacted_batches_hold_at_most_a_thousand_records_and_keep_the_owners_order(tmp_path):
    log, state = reopen(tmp_path / "internal", min_dead_records=1)
    keys = [b"%05d" % index for index in range(2500)]
    await write(log, state, [(key, b"old") for key in keys])
    await write(log, state, [(key, b"new") for key in keys])
    assert log.log_records == 2500
    log.close()
    written = batches_of(tmp_path / "internal")
    assert [len(batch[-1]) for batch in written] == [1000, 1000, 500]
    assert [key for batch in written for key in batch[-1]] == keys


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
