"""Random sequences of log operations, crashes included, checked against an in-memory model."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from log_batches import Clock, build_batch, open_log, same_batch_at

from log import AbortedTxn, Log, OffsetOutOfRangeError


@dataclass
class Stored:
    base_offset: int
    last_offset: int
    produced: bytes
    segment_base_offset: int
    position: int


class LogMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = Path(tempfile.mkdtemp(prefix="log-machine-"))
        self.clock = Clock()
        self.model: list[Stored] = []
        # Aborted transactions one after another, so each one's last stable offset is the offset
        # after its marker.
        self.aborted: list[AbortedTxn] = []
        self.log_start_offset = 0
        self.log_end_offset = 0
        self.flushed_offset = 0

    @initialize(
        segment_bytes=st.integers(1_700, 5_000),
        index_interval_bytes=st.integers(0, 600),
        retention_bytes=st.sampled_from([-1, 3_000, 10_000]),
        retention_ms=st.sampled_from([-1, 20_000]),
    )
    def open(self, **config: int) -> None:
        self.config = config
        self.log = self.reopen()

    def reopen(self) -> Log:
        return open_log(self.directory, self.clock, **self.config)

    def teardown(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    # -- operations ------------------------------------------------------------------------------

    @rule(
        records=st.integers(1, 5),
        value_size=st.integers(0, 300),
        elapsed=st.integers(0, 5_000),
        writable=st.booleans(),
    )
    def append(self, records: int, value_size: int, elapsed: int, writable: bool) -> None:
        self.clock.now += elapsed
        batch = build_batch(records, timestamp=self.clock.now, value_size=value_size)
        info = self.log.append(bytearray(batch) if writable else batch)
        assert (info.base_offset, info.last_offset) == (self.log_end_offset, self.log_end_offset + records - 1)
        active = self.log.segments[-1]
        self.model.append(Stored(info.base_offset, info.last_offset, batch, active.base_offset, info.position))
        self.log_end_offset += records

    @rule(data=st.data(), records=st.integers(1, 3))
    def abort(self, data: st.DataObject, records: int) -> None:
        """Append a batch standing for an ABORT marker and index the transaction it ends."""
        first_offset = self.aborted[-1].last_offset + 1 if self.aborted else 0
        self.append(records, value_size=20, elapsed=0, writable=False)
        last_offset = self.log_end_offset - 1
        first_offset = data.draw(st.integers(first_offset, last_offset), label="first_offset")
        entry = AbortedTxn(1, first_offset, last_offset, last_offset + 1)
        self.log.add_aborted_transaction(entry)
        self.aborted.append(entry)

    @rule(data=st.data())
    def aborted_transactions(self, data: st.DataObject) -> None:
        start = data.draw(st.integers(self.log_start_offset, self.log_end_offset), label="start_offset")
        upper = data.draw(st.integers(start, self.log_end_offset + 1), label="upper_bound_offset")
        assert self.log.aborted_transactions(start, upper) == [
            e for e in self.aborted if e.last_offset >= start and e.first_offset < upper
        ]

    @precondition(lambda self: self.model)
    @rule(data=st.data(), max_bytes=st.integers(0, 4_000), below=st.integers(0, 3))
    def read_below_max_offset(self, data: st.DataObject, max_bytes: int, below: int) -> None:
        offset = data.draw(st.integers(self.log_start_offset, self.log_end_offset), label="offset")
        later = [s.base_offset for s in self.model if s.base_offset > offset]
        max_offset = later[min(below, len(later) - 1)] if later else self.log_end_offset
        records = bytes(self.log.read(offset, max_bytes, max_offset=max_offset))
        whole = bytes(self.log.read(offset, max_bytes))
        kept = sum(len(s.produced) for s in self.model if s.last_offset >= offset and s.base_offset < max_offset)
        assert records == whole[:kept]

    @precondition(lambda self: self.model)
    @rule(data=st.data(), max_bytes=st.integers(0, 4_000))
    def read(self, data: st.DataObject, max_bytes: int) -> None:
        offset = data.draw(st.integers(self.log_start_offset, self.log_end_offset), label="offset")
        records = bytes(self.log.read(offset, max_bytes))
        if offset == self.log_end_offset:
            assert records == b""
            return
        following = [s for s in self.model if s.last_offset >= offset]
        first = following[0]
        assert len(records) >= len(first.produced)
        expected = b"".join(bytes(self.stored_bytes(s)) for s in following)
        assert records == expected[: len(records)]

    @rule(offset=st.integers(-3, 3))
    def read_out_of_range(self, offset: int) -> None:
        target = self.log_start_offset - 1 - offset if offset >= 0 else self.log_end_offset - offset
        with pytest.raises(OffsetOutOfRangeError):
            self.log.read(target, 100)

    @rule()
    def roll(self) -> None:
        self.log.roll()

    @rule(elapsed=st.integers(0, 30_000))
    def apply_retention(self, elapsed: int) -> None:
        self.clock.now += elapsed
        active = self.log.segments[-1]
        deleted = self.log.apply_retention()
        assert active.base_offset not in [s.base_offset for s in deleted]
        if deleted:
            self.log_start_offset = max(self.log_start_offset, deleted[-1].next_offset)
        self.forget_below_log_start()

    @precondition(lambda self: self.model)
    @rule(data=st.data())
    def delete_records(self, data: st.DataObject) -> None:
        offset = data.draw(st.integers(self.log_start_offset, self.log_end_offset), label="before_offset")
        assert self.log.delete_records(offset) == offset
        # Durable once flushed, as the broker flushes before answering DeleteRecords.
        assert self.log.flush() == self.log_end_offset
        self.flushed_offset = self.log_end_offset
        self.log_start_offset = offset
        self.forget_below_log_start()

    @rule()
    def flush(self) -> None:
        assert self.log.flush() == self.log_end_offset
        self.flushed_offset = self.log_end_offset

    @rule()
    def close_and_reopen(self) -> None:
        self.log.close()
        self.log = self.reopen()
        self.flushed_offset = self.log_end_offset
        assert self.log.transaction_index_end == self.log_end_offset
        self.check_every_batch()

    @rule(
        damage=st.sampled_from(["none", "truncate", "garble"]),
        where=st.floats(0, 1),
        drop_indexes=st.lists(st.integers(0, 50), max_size=4),
    )
    def crash(self, damage: str, where: float, drop_indexes: list[int]) -> None:
        """Drop the log unclosed, then damage the active segment past the flushed data, as a crash
        losing unflushed page cache would, and maybe lose some index files."""
        active = self.log.segments[-1]
        del self.log
        unflushed = [s for s in self.model if s.base_offset >= self.flushed_offset and s.segment_base_offset == active.base_offset]
        start = unflushed[0].position if unflushed else active.size_in_bytes
        position = start + int(where * (active.size_in_bytes - start))
        path = self.directory / f"{active.base_offset:020d}.log"
        if damage == "truncate":
            with open(path, "r+b") as file:
                file.truncate(position)
        elif damage == "garble":
            data = bytearray(path.read_bytes())
            for number in range(position, len(data)):
                data[number] ^= 0xA5
            path.write_bytes(bytes(data))
        index_files = sorted(self.directory.glob("*index"))
        for number in drop_indexes:
            if index_files:
                index_files.pop(number % len(index_files)).unlink()

        self.log = self.reopen()
        if damage != "none":
            # Everything from the batch the damage starts in is gone.
            lost = [s for s in unflushed if s.position + len(s.produced) > position]
            event(f"crash with {damage}: {'lost batches' if lost else 'nothing lost'}")
            if lost:
                self.log_end_offset = lost[0].base_offset
                self.model = self.model[: self.model.index(lost[0])]
        if self.log_start_offset > self.log_end_offset:
            self.log_end_offset = self.log_start_offset
            self.model = []
        assert self.log.log_end_offset == self.log_end_offset >= self.flushed_offset
        self.flushed_offset = self.log_end_offset
        self.check_every_batch()
        self.rebuild_transaction_indexes()

    # -- checks ----------------------------------------------------------------------------------

    def stored_bytes(self, stored: Stored) -> bytes:
        return stored.base_offset.to_bytes(8, "big") + stored.produced[8:]

    def forget_below_log_start(self) -> None:
        self.model = [s for s in self.model if s.last_offset >= self.log_start_offset]

    def rebuild_transaction_indexes(self) -> None:
        """What the broker does after opening a log: entries below transaction_index_end are
        there; it adds those from there on again."""
        self.aborted = [e for e in self.aborted if e.last_offset < self.log_end_offset]
        end = self.log.transaction_index_end
        assert self.log_start_offset <= end <= self.log_end_offset
        kept = [e for e in self.aborted if e.last_offset >= self.log_start_offset]
        assert [e for e in self.log.aborted_transactions(self.log_start_offset, self.log_end_offset + 1) if e.last_offset < end] == [
            e for e in kept if e.last_offset < end
        ]
        for entry in kept:
            if entry.last_offset >= end:
                self.log.add_aborted_transaction(entry)

    def check_every_batch(self) -> None:
        for stored in self.model:
            offset = max(stored.base_offset, self.log_start_offset)
            assert same_batch_at(bytes(self.log.read(offset, 0)), stored.produced, stored.base_offset)

    @invariant()
    def offsets_and_segments_agree_with_the_model(self) -> None:
        if not hasattr(self, "log"):
            return
        log = self.log
        assert (log.log_start_offset, log.log_end_offset) == (self.log_start_offset, self.log_end_offset)
        segments = log.segments
        assert segments[0].base_offset <= log.log_start_offset
        assert all(a.next_offset == b.base_offset for a, b in zip(segments, segments[1:]))
        assert segments[-1].next_offset == log.log_end_offset
        assert log.size_in_bytes == sum(s.size_in_bytes for s in segments)
        assert [b.base_offset for b in log.iter_batches()] == [s.base_offset for s in self.model]
        assert log.aborted_transactions(self.log_start_offset, self.log_end_offset + 1) == [
            e for e in self.aborted if e.last_offset >= self.log_start_offset
        ]
        offsets = [(s.base_offset, s.last_offset) for s in self.model]
        assert all(last + 1 == base for (_, last), (base, _) in zip(offsets, offsets[1:]))


LogMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_log_machine = LogMachine.TestCase
