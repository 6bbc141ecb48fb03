"""The commit log of one partition: a directory of segments with Kafka's on-disk layout."""

from __future__ import annotations

import bisect
import collections
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from log.batch import BatchInfo, verify_batch
from log.cleaner import (
    CLEANING_LEFTOVER,
    CleaningPlan,
    CleaningResult,
    LastRecord,
    finish_interrupted_swaps,
    group_files,
    swap_in,
)
from log.checkpoint import checkpoint_temporary, fsync_directory, read_checkpoint, write_checkpoint
from log.config import UNLIMITED, LogConfig
from log.errors import (
    CorruptLogError,
    LogClosedError,
    LogStorageError,
    OffsetOutOfRangeError,
    RecordBatchTooLargeError,
)
from log.file_records import FileRecords
from log.segment import DELETED_SUFFIX, LogSegment, SegmentInfo, segment_file_name
from log.txn_index import TEMPORARY_SUFFIX, AbortedTxn
from protocol.record_batch import NO_TIMESTAMP, BatchHeader, CorruptBatchError

LOG_START_OFFSET_CHECKPOINT = "log-start-offset.checkpoint"
RECOVERY_POINT_CHECKPOINT = "recovery-point.checkpoint"
# Where the cleaner's next pass starts mapping keys (Kafka's cleaner-offset-checkpoint).
CLEANER_OFFSET_CHECKPOINT = "cleaner-offset.checkpoint"
CLEAN_SHUTDOWN_MARKER = "clean-shutdown"
_CHECKPOINT_LEFTOVERS = {
    checkpoint_temporary(name)
    for name in (LOG_START_OFFSET_CHECKPOINT, RECOVERY_POINT_CHECKPOINT, CLEANER_OFFSET_CHECKPOINT)
}
_SEGMENT_FILE = re.compile(r"(\d{20})\.(log|index|timeindex|txnindex)")
# What a deletion, or the write of a transaction index, that a crash interrupted leaves behind.
_LEFTOVER_FILE = re.compile(
    rf"\d{{20}}\.(log|index|timeindex|txnindex){re.escape(DELETED_SUFFIX)}|\d{{20}}\.txnindex{re.escape(TEMPORARY_SUFFIX)}"
)
# Sealed segments whose file stays open and indexes mapped between reads (one descriptor and two
# mappings each), so that reads of the same old segment share them.
LOADED_SEALED_SEGMENTS = 4
# Where the segments' roll jitter comes from unless the log is given a source.
_RANDOM = random.Random()


def current_time_ms() -> int:
    return time.time_ns() // 1_000_000


class AppendInfo(NamedTuple):
    base_offset: int
    last_offset: int
    max_timestamp: int
    # Where the batch starts in the active segment's .log file.
    position: int


class TimestampOffset(NamedTuple):
    """The first batch with a max timestamp >= the one asked for: its max timestamp and its base
    offset (raised to the log start offset when the batch straddles it)."""

    timestamp: int
    offset: int


class Log:
    """Append-only, segmented storage of one partition's record batches.

    Everything runs on the caller's thread except flush() and remove_deleted_files(), which may
    run in worker threads (trio.to_thread) while this thread keeps appending and reading: the
    segment list is replaced, never changed in place, and files are closed only when nothing refers
    to them.

    `clock` gives the time in milliseconds; `rng` (a random.Random) each segment's roll jitter."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        config: LogConfig | None = None,
        *,
        clock: Callable[[], int] = current_time_ms,
        rng: random.Random = _RANDOM,
    ) -> None:
        self.directory = Path(directory)
        self.config = config or LogConfig()
        self._clock = clock
        self._rng = rng
        self._max_batch_size = min(self.config.max_message_bytes, self.config.segment_bytes)
        self._flush_lock = threading.Lock()
        self._loaded: dict[LogSegment, None] = {}  # sealed segments with mapped indexes, oldest use first
        # (when it may go, path) of each file of the segments that retention or DeleteRecords took
        # out of the log, not yet removed. A deque: this thread appends while a worker thread takes.
        self._deleted_files: collections.deque[tuple[int, Path]] = collections.deque()
        self._removal_lock = threading.Lock()  # one remove_deleted_files at a time
        # Sealed segments whose transaction index the next flush writes (when it changed).
        self._unwritten_txn_indexes: list[LogSegment] = []
        self._closed = False
        self._segments: list[LogSegment] = []
        self._base_offsets: list[int] = []
        self._open()

    # -- opening and recovery --------------------------------------------------------------------

    def _open(self) -> None:
        found = self._segment_files()
        base_offsets = sorted(base for base, kinds in found.items() if "log" in kinds)
        now = self._clock()
        self._clean_shutdown = (self.directory / CLEAN_SHUTDOWN_MARKER).exists()
        self._log_start_offset = read_checkpoint(self.directory / LOG_START_OFFSET_CHECKPOINT) or 0
        # What the log start offset checkpoint holds: a DeleteRecords beyond it is made durable by
        # the next flush, off the caller's thread, with the directory entries changed since.
        self._checkpointed_log_start_offset = self._log_start_offset
        self._directory_changed = False
        self._recovery_point = read_checkpoint(self.directory / RECOVERY_POINT_CHECKPOINT) or 0
        self._first_dirty_offset = self._checkpointed_first_dirty_offset = (
            read_checkpoint(self.directory / CLEANER_OFFSET_CHECKPOINT) or 0)
        new_log = not base_offsets
        if new_log:  # its first, empty segment goes through recovery below, preallocated after it
            base_offsets = [self._log_start_offset]
            LogSegment.create(self.directory, self._log_start_offset, self.config, now)

        segments = [
            LogSegment.sealed(self.directory, base, self.config, next_base)
            for base, next_base in zip(base_offsets, base_offsets[1:])
        ]
        segments.append(LogSegment(self.directory, base_offsets[-1], self.config, self._roll_jitter_ms()))
        if self._clean_shutdown and segments[-1].resume(now):
            recover_from = len(segments)
        elif self._clean_shutdown:
            recover_from = len(segments) - 1
        else:
            recover_from = self._recovery_start(base_offsets)
        recovered = recover_from < len(segments)
        # Segments whose transaction index starts empty: recovered ones (recover() resets it) and
        # those whose .txnindex is missing or unreadable.
        reset = {segment.base_offset for segment in segments[recover_from:]}
        reset |= {segment.base_offset for segment in segments[:recover_from] if not segment.open_txn_index()}
        for segment in segments[: min(recover_from, len(segments) - 1)]:
            if not {"index", "timeindex"} <= found.get(segment.base_offset, set()):
                segment.rebuild_indexes()
            segment.unload()
        self._recover(segments, recover_from, now)
        self._set_segments(segments)
        if new_log:
            segments[-1].preallocate()

        if self._log_start_offset > self.log_end_offset:
            # The records below a persisted log start offset were lost in a crash: start over there
            # (as Kafka's truncateFullyAndStartAt does).
            for segment in self._segments:
                segment.delete()
            self._set_segments([self._new_segment(self._log_start_offset, now)])
            recovered = True
            reset = set()
        self._log_start_offset = max(self._log_start_offset, self._segments[0].base_offset)
        self._recovery_point = min(self._recovery_point, self.log_end_offset)
        self._transaction_index_end = min(reset, default=None)
        # Everything on disk was synced by the clean shutdown, or is by the sync just below.
        self._flushed_offset = self.log_end_offset
        self._last_flush_ms = now
        if recovered:
            # The recovery point stays: the recovered segments' old .txnindex files would be
            # trusted after a crash, before the broker added their entries again and a flush
            # wrote them.
            self._sync(with_active_indexes=False, advance_recovery_point=False)
        self._unwritten_txn_indexes = [s for s in self._segments[:-1] if s.base_offset in reset]

    def _segment_files(self) -> dict[int, set[str]]:
        """The kinds of segment file (log, index, timeindex, txnindex) present for each base offset, after
        removing what interrupted operations left behind."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            names = os.listdir(self.directory)
            if finish_interrupted_swaps(self.directory, names):
                names = os.listdir(self.directory)
        except OSError as error:
            raise LogStorageError(self.directory, error) from error
        found: dict[int, set[str]] = {}
        for name in names:
            match = _SEGMENT_FILE.fullmatch(name)
            if match:
                found.setdefault(int(match[1]), set()).add(match[2])
            elif name in _CHECKPOINT_LEFTOVERS or _LEFTOVER_FILE.fullmatch(name) or CLEANING_LEFTOVER.fullmatch(name):
                self._remove(name)
        for base_offset, kinds in found.items():
            if "log" not in kinds:
                for kind in kinds:  # indexes of a segment whose deletion a crash interrupted
                    self._remove(segment_file_name(base_offset, f".{kind}"))
        return found

    def _recover(self, segments: list[LogSegment], recover_from: int, now: int) -> None:
        """Validate segments[recover_from:] and seal all but the last one. Only the last is cut at
        its first invalid byte (a torn tail); damage in an earlier one stays where it is, answered
        by reads with CorruptLogError, so that the valid batches after it are kept (Kafka would
        delete every later segment)."""
        for number in range(recover_from, len(segments) - 1):
            segments[number].recover(now, segments[number + 1].base_offset)
            segments[number].seal()
        if recover_from < len(segments):
            segments[-1].recover(now)

    def _recovery_start(self, base_offsets: list[int]) -> int:
        """The index of the segment recovery after a crash starts at: the one holding the recovery
        point. With preallocation, one ending at the recovery point as well: sealed after the flush
        that set it, its trim to the batches written may not be on disk."""
        if self.config.preallocate:
            return max(bisect.bisect_left(base_offsets, self._recovery_point) - 1, 0)
        return max(bisect.bisect_right(base_offsets, self._recovery_point) - 1, 0)

    def _new_segment(self, base_offset: int, now_ms: int) -> LogSegment:
        segment = LogSegment.create(self.directory, base_offset, self.config, now_ms, self._roll_jitter_ms())
        segment.preallocate()
        return segment

    def _roll_jitter_ms(self) -> int:
        """A new segment's roll jitter: random in [0, min(segment_jitter_ms, segment_ms)), as Kafka's
        LogConfig.randomSegmentJitter."""
        jitter_ms = self.config.segment_jitter_ms
        return self._rng.randrange(min(jitter_ms, self.config.segment_ms)) if jitter_ms else 0

    def _remove(self, name: str) -> None:
        try:
            (self.directory / name).unlink(missing_ok=True)
        except OSError as error:
            raise LogStorageError(self.directory / name, error) from error

    def _set_segments(self, segments: list[LogSegment]) -> None:
        # Replaced whole, so a flush in another thread always sees a consistent list.
        self._segments = segments
        self._base_offsets = [segment.base_offset for segment in segments]

    # -- properties ------------------------------------------------------------------------------

    @property
    def log_start_offset(self) -> int:
        """The first offset that may be read."""
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        """The offset the next appended batch gets."""
        return self._segments[-1].next_offset

    @property
    def flushed_offset(self) -> int:
        """Every offset below this one is on disk (fsynced) and survives a crash."""
        return self._flushed_offset

    @property
    def durable_log_start_offset(self) -> int:
        """The log start offset a crash now would reopen at, at least (flush() persists a newer one)."""
        return self._checkpointed_log_start_offset

    @property
    def unflushed_messages(self) -> int:
        """Offsets appended since the last flush (Kafka's flush.messages counts these)."""
        return self.log_end_offset - self._flushed_offset

    @property
    def max_timestamp(self) -> int | None:
        """The largest batch max timestamp in the log (Kafka's ListOffsets MAX_TIMESTAMP), None
        while no batch carries a timestamp. Learning a sealed segment's maps its time index once."""
        self._check_open()
        largest = NO_TIMESTAMP
        for segment in self._segments:
            if segment.next_offset > self._log_start_offset:
                self._use(segment)
                largest = max(largest, segment.largest_batch_timestamp())
        return None if largest == NO_TIMESTAMP else largest

    @property
    def transaction_index_end(self) -> int:
        """Every aborted transaction whose marker lies below this offset is in the transaction
        indexes. Below the log end offset when the open reset some (after a crash, or a .txnindex
        missing or unreadable): the first offset of the first such segment, from which the broker
        replays the log and adds the aborted transactions again."""
        end = self._transaction_index_end
        return self.log_end_offset if end is None else max(end, self._log_start_offset)

    @property
    def size_in_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    @property
    def segment_count(self) -> int:
        return len(self._segments)

    @property
    def segments(self) -> list[SegmentInfo]:
        return [SegmentInfo(s.base_offset, s.next_offset, s.size) for s in self._segments]

    # -- appending -------------------------------------------------------------------------------

    def append(self, batch: bytes | bytearray | memoryview, *, verified_header: BatchHeader | None = None) -> AppendInfo:
        """Append one record batch (magic 2), giving it the next offsets by writing its baseOffset
        field; no other byte changes, so its CRC stays valid. A writable buffer (bytearray, or a
        memoryview of one) gets that field set in place, as Kafka does; a read-only one is left alone.

        `verified_header` is the batch's header from a caller that checked, as verify_batch does,
        that the batch is whole, its offsets do not run backwards and it matches its CRC-32C (the
        produce path does, before de-duplicating): the log trusts it instead of checking again.

        Raises RecordBatchTooLargeError, or CorruptBatchError (length, magic, offsets, CRC-32C)."""
        self._check_open()
        view = memoryview(batch)
        if view.format != "B":
            view = view.cast("B")
        size = len(view)
        if size > self._max_batch_size:
            raise RecordBatchTooLargeError(
                f"a {size}-byte batch exceeds max_message_bytes {self.config.max_message_bytes} "
                f"or segment_bytes {self.config.segment_bytes}"
            )
        header = verified_header or verify_batch(view)
        max_timestamp, last_offset_delta = header.max_timestamp, header.last_offset_delta
        if self._clean_shutdown:
            self._forget_clean_shutdown()
        active = self._segments[-1]
        base_offset = active.next_offset
        position = active.try_append(view, max_timestamp, last_offset_delta, self._clock)
        if position is None:
            active = self._roll()
            position = active.try_append(view, max_timestamp, last_offset_delta, self._clock)
            assert position is not None  # an empty segment takes any batch
        return AppendInfo(base_offset, base_offset + last_offset_delta, max_timestamp, position)

    def roll(self) -> None:
        """Start a new segment at the log end offset, unless the active one is still empty."""
        self._check_open()
        if self._segments[-1].size:
            self._roll()

    def _roll(self) -> LogSegment:
        if self._clean_shutdown:
            self._forget_clean_shutdown()
        old = self._segments[-1]
        old.seal()
        self._unwritten_txn_indexes.append(old)
        new = self._new_segment(old.next_offset, self._clock())
        self._set_segments([*self._segments, new])
        return new

    def _forget_clean_shutdown(self) -> None:
        """Remove the marker before the first change, so a crash from now on is recovered. The
        removal is made durable by the next flush, which the appended data needs as well: on the
        appending (event loop) thread, only the unlink."""
        self._remove(CLEAN_SHUTDOWN_MARKER)
        self._directory_changed = True
        self._clean_shutdown = False

    @property
    def closed(self) -> bool:
        return self._closed

    def reconfigure(self, config: LogConfig) -> None:
        """Apply new settings to this open log (a topic config altered live): they govern the next
        append, roll, retention and flush. Index sizes stay as they were for existing segments."""
        self.config = config
        self._max_batch_size = min(config.max_message_bytes, config.segment_bytes)
        for segment in self._segments:
            segment.config = config

    # -- reading ---------------------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int, *, min_one_batch: bool = True, max_offset: int | None = None) -> FileRecords:
        """Stored batches from the one holding `offset`, up to `max_bytes` and never past the end of
        its segment; the last may be cut short, as Kafka does. The batch holding `offset` comes whole
        even when larger than `max_bytes`, unless min_one_batch is False: then the result is empty
        (KIP-74: only the first partition of a fetch response goes over the limit). Empty at the log
        end offset.

        With `max_offset` (a batch boundary, such as the last stable offset for read committed),
        no batch whose base offset is >= max_offset: empty when `offset` is.

        Raises OffsetOutOfRangeError below the log start offset or beyond the log end offset."""
        active = self._segments[-1]
        if offset == active.next_offset and not self._closed:
            return FileRecords(active.file, active.size, 0)  # a consumer at the log end: the usual read
        number = self._segment_index(offset)
        while True:
            segment = self._segments[number]
            if offset == segment.next_offset or (max_offset is not None and offset >= max_offset):
                assert active.file is not None
                return FileRecords(active.file, active.size, 0)
            self._use(segment)
            records = segment.read(offset, max_bytes, min_one_batch, max_offset)
            if records is not None:
                return records
            # The cleaner removed this segment's batches from `offset` on: read on from the next.
            number += 1
            offset = self._segments[number].base_offset

    def _segment_for(self, offset: int) -> LogSegment:
        return self._segments[self._segment_index(offset)]

    def _segment_index(self, offset: int) -> int:
        """Where the segment holding `offset` (the active one at the log end) is in the segment list."""
        self._check_open()
        if not self._log_start_offset <= offset <= self.log_end_offset:
            raise OffsetOutOfRangeError(offset, self._log_start_offset, self.log_end_offset)
        return bisect.bisect_right(self._base_offsets, offset) - 1

    def _use(self, segment: LogSegment) -> None:
        """Note a use of a sealed segment, unloading the least recently used beyond the limit."""
        if segment is self._segments[-1]:
            return
        self._loaded.pop(segment, None)
        self._loaded[segment] = None
        while len(self._loaded) > LOADED_SEALED_SEGMENTS:
            oldest = next(iter(self._loaded))
            del self._loaded[oldest]
            oldest.unload()

    def offset_for_timestamp(self, timestamp: int) -> TimestampOffset | None:
        """The first batch whose max timestamp is >= `timestamp`, through the time indexes; None if
        no batch is that recent. The broker finds the exact record inside the batch."""
        self._check_open()
        for segment in self._segments:
            if segment.next_offset <= self._log_start_offset:
                continue
            self._use(segment)
            if segment.largest_timestamp() >= timestamp:
                batch = segment.find_timestamp(timestamp, self._log_start_offset)
                if batch is not None:
                    return TimestampOffset(batch.max_timestamp, max(batch.base_offset, self._log_start_offset))
        return None

    def iter_batches(self, start_offset: int | None = None) -> Iterator[BatchInfo]:
        """Header fields of every batch from the one holding `start_offset` (default: the log
        start offset) to the log end offset as it is when each segment is reached."""
        start = self._log_start_offset if start_offset is None else start_offset
        first = self._segment_for(start)
        segments = self._segments
        return self._batches(segments[segments.index(first) :], start)

    def _batches(self, segments: list[LogSegment], start: int) -> Iterator[BatchInfo]:
        for segment in segments:
            if start >= segment.next_offset:
                continue
            self._use(segment)
            file = segment.open_file()
            position, first_offset = 0, segment.base_offset
            try:
                if start > segment.base_offset:
                    first = segment.locate(file, start)
                    if first is None:
                        continue
                    position, first_offset = first.position, first.base_offset
                yield from segment.batches(file, position, first_offset)
            except (CorruptLogError, CorruptBatchError):
                continue  # damage hides the rest of this segment (reads report it); the next is whole

    # -- aborted transactions --------------------------------------------------------------------

    def add_aborted_transaction(self, entry: AbortedTxn) -> None:
        """Record an aborted transaction in the index of the segment holding its ABORT marker
        (entry.last_offset, appended already); nothing when that index has an entry for the marker,
        so that a replay may add entries again. Flushes and close() make it durable.

        Entries go in the active segment; an earlier one takes them while the broker adds the
        entries of an index the open reset (from transaction_index_end on), before the first
        flush: that flush writes them.

        Raises OffsetOutOfRangeError when last_offset is not in the log."""
        self._check_open()
        offset = entry.last_offset
        if not self._log_start_offset <= offset < self.log_end_offset:
            raise OffsetOutOfRangeError(offset, self._log_start_offset, self.log_end_offset)
        segment = self._segments[bisect.bisect_right(self._base_offsets, offset) - 1]
        self._use(segment)
        if not segment.add_aborted_txn(entry):
            return
        if self._clean_shutdown:
            self._forget_clean_shutdown()
        if segment is not self._segments[-1]:
            self._unwritten_txn_indexes.append(segment)

    def fetch_upper_bound(self, offset: int, records: FileRecords) -> int:
        """An offset past every record of `records`, read from `offset`, found in one index lookup
        (a read never leaves its segment): the bound of the aborted transactions a read committed
        fetch names, so that one far behind is not sent every abort up to the last stable offset."""
        number = self._segment_index(offset)
        # The read went on to a later segment when the cleaner emptied the rest of this one.
        while self._segments[number].log_path != records.path:
            number += 1
        segment = self._segments[number]
        self._use(segment)
        return segment.upper_bound_offset(records.position + len(records))

    def aborted_transactions(self, start_offset: int, upper_bound_offset: int) -> list[AbortedTxn]:
        """The aborted transactions with a last offset >= start_offset and a first offset <
        upper_bound_offset, in marker order: those overlapping a read committed fetch from
        start_offset that returned offsets below upper_bound_offset (Kafka's
        collectAbortedTransactions). Reads the indexes from the segment holding start_offset on,
        until one shows that no later segment can hold more.

        Raises OffsetOutOfRangeError outside [log start offset, log end offset], CorruptLogError
        when a transaction index file changed since the open."""
        found: list[AbortedTxn] = []
        for segment in self._segments[self._segment_index(start_offset) :]:
            if not segment.aborted_txn_count:
                continue
            self._use(segment)
            if segment.txn_index.collect(start_offset, upper_bound_offset, found):
                break
        return found

    # -- retention -------------------------------------------------------------------------------

    def apply_retention(self, now_ms: int | None = None) -> list[SegmentInfo]:
        """Delete the oldest segments that are past retention_ms, beyond retention_bytes or wholly
        below the log start offset; never the active segment. Returns the deleted segments."""
        self._check_open()
        now = self._clock() if now_ms is None else now_ms
        retention_ms, retention_bytes = self.config.retention_ms, self.config.retention_bytes
        size = self.size_in_bytes
        count = 0
        for segment in self._segments[:-1]:
            self._use(segment)
            if not (
                segment.next_offset <= self._log_start_offset
                or (retention_bytes >= 0 and size - segment.size >= retention_bytes)
                or (retention_ms >= 0 and now - segment.largest_timestamp() > retention_ms)
            ):
                break
            size -= segment.size
            count += 1
        return self._delete_oldest(count)

    def delete_records(self, before_offset: int) -> int:
        """Make `before_offset` the log start offset (Kafka's DeleteRecords) if that moves it forward,
        and delete the segments wholly below it. Returns the log start offset. It is durable once
        the log is flushed (or closed), as appended batches are: flush() runs in a worker thread."""
        self._check_open()
        if before_offset > self.log_end_offset:
            raise OffsetOutOfRangeError(before_offset, self._log_start_offset, self.log_end_offset)
        if before_offset > self._log_start_offset:
            self._log_start_offset = before_offset
            self._delete_oldest(
                sum(1 for segment in self._segments[:-1] if segment.next_offset <= before_offset)
            )
        return self._log_start_offset

    @property
    def file_removal_due_ms(self) -> int | None:
        """The earliest time at which remove_deleted_files() has a file to remove; None while none waits."""
        # list() copies the deque at once, safe while a worker thread takes from it.
        return min((due for due, _ in list(self._deleted_files)), default=None)

    def remove_deleted_files(self, now_ms: int | None = None) -> None:
        """Unlink the files of the segments taken out of the log file_delete_delay_ms or more ago
        (Kafka's delayed delete-file task); a read that had one open keeps its bytes. Safe to run in a
        worker thread while this log's own thread appends, reads and takes out more."""
        now = self._clock() if now_ms is None else now_ms
        with self._removal_lock:
            # Only this thread takes entries: each of those there now is seen once.
            for _ in range(len(self._deleted_files)):
                entry = self._deleted_files.popleft()
                if entry[0] > now:
                    self._deleted_files.append(entry)
                    continue
                try:
                    entry[1].unlink(missing_ok=True)
                except OSError as error:
                    self._deleted_files.append(entry)  # tried again next time; an open removes them too
                    raise LogStorageError(entry[1], error) from error

    def _delete_oldest(self, count: int) -> list[SegmentInfo]:
        deleted = self._segments[:count]
        if not deleted:
            return []
        self._set_segments(self._segments[count:])
        self._log_start_offset = max(self._log_start_offset, self._segments[0].base_offset)
        due = self._clock() + self.config.file_delete_delay_ms
        for segment in deleted:
            self._loaded.pop(segment, None)
            self._deleted_files.extend((due, path) for path in segment.mark_deleted())
        return [SegmentInfo(s.base_offset, s.next_offset, s.size) for s in deleted]

    # -- cleaning (compaction) -------------------------------------------------------------------

    @property
    def first_dirty_offset(self) -> int:
        """Where the part of the log not cleaned yet starts (the cleaner's checkpoint)."""
        offset = self._first_dirty_offset
        return offset if self._log_start_offset <= offset <= self.log_end_offset else self._log_start_offset

    def roll_if_due(self, now_ms: int | None = None) -> bool:
        """Roll the active segment once it is older than segment_ms, without waiting for an append
        to do it: a quiet compacted log's last records become cleanable. Whether it rolled."""
        self._check_open()
        if not self._segments[-1].due_to_roll(self._clock() if now_ms is None else now_ms):
            return False
        self._roll()
        return True

    def cleaning_plan(self, last_stable_offset: int, producers: dict[int, LastRecord], buffer_bytes: int,
                      now_ms: int | None = None) -> CleaningPlan | None:
        """The cleaner's next pass over this log (log.cleaner.clean runs it), or None when it needs
        none now: not compact, or its dirty section (from first_dirty_offset to the first segment
        that cannot be cleaned) is empty, or no more than min_cleanable_dirty_ratio of the log and
        no older than max_compaction_lag_ms. Cleanable are whole sealed segments below
        `last_stable_offset` whose records are all at least min_compaction_lag_ms old (Kafka's
        cleanableOffsets). `producers`: each active producer's last batch, which the pass keeps."""
        self._check_open()
        config = self.config
        if not config.compact:
            return None
        now = self._clock() if now_ms is None else now_ms
        first_dirty = self.first_dirty_offset
        uncleanable = min(last_stable_offset, self._segments[-1].base_offset)
        sealed = self._segments[:-1]
        if config.min_compaction_lag_ms:
            for segment in sealed:
                if segment.next_offset > first_dirty:
                    self._use(segment)
                    if segment.largest_timestamp() > now - config.min_compaction_lag_ms:
                        uncleanable = min(uncleanable, segment.base_offset)
                        break
        cleanable = [segment for segment in sealed if segment.next_offset <= uncleanable]
        dirty = [segment for segment in cleanable if segment.next_offset > first_dirty]
        if not dirty:
            return None
        dirty_bytes = sum(segment.size for segment in dirty)
        clean_bytes = sum(segment.size for segment in cleanable[: len(cleanable) - len(dirty)])
        if dirty_bytes / ((clean_bytes + dirty_bytes) or 1) <= config.min_cleanable_dirty_ratio and not (
            config.max_compaction_lag_ms < UNLIMITED
            and now - self._first_batch_timestamp(dirty[0]) > config.max_compaction_lag_ms
        ):
            return None
        return CleaningPlan(
            self.directory, config, tuple(SegmentInfo(s.base_offset, s.next_offset, s.size) for s in cleanable),
            first_dirty, tuple(self.aborted_transactions(self._log_start_offset, cleanable[-1].next_offset)),
            producers, now, buffer_bytes)

    def _first_batch_timestamp(self, segment: LogSegment) -> int:
        """The max timestamp of the segment's first batch (Kafka's getFirstBatchTimestamp); its
        file's modification time when that batch has none."""
        self._use(segment)
        for batch in self._batches([segment], segment.base_offset):
            if batch.max_timestamp != NO_TIMESTAMP:
                return batch.max_timestamp
            break
        return segment.largest_timestamp()

    def replace_segments(self, result: CleaningResult) -> bool:
        """Swap in all the segments a cleaning pass wrote at once (see swap_in_groups); whether all
        were swapped in."""
        return all(self.swap_in_groups(result))

    def swap_in_groups(self, result: CleaningResult) -> Iterator[bool]:
        """Swap in the segments a cleaning pass wrote (renames only, on this thread) group by
        group, yielding after each whether it was swapped in, so that the caller can let others
        run between groups. A group whose segments are no longer those the pass read (retention or
        DeleteRecords took some out meanwhile) is not, and ends the swap: its files and the later
        groups' are removed later. The cleaner's first dirty offset moves on once the last group
        is in; the next flush makes it all durable."""
        groups = list(result.groups)
        due = self._clock() + self.config.file_delete_delay_ms
        for index, group in enumerate(groups):
            self._check_open()
            number = bisect.bisect_left(self._base_offsets, group.base_offset)
            old = self._segments[number : number + len(group.replaced)]
            if number + len(group.replaced) >= len(self._segments) or [
                SegmentInfo(s.base_offset, s.next_offset, s.size) for s in old
            ] != list(group.replaced):
                for unswapped in groups[index:]:  # their cleaned files, removed with the deleted segments'
                    self._deleted_files.extend((due, path) for path in group_files(self.directory, unswapped))
                yield False
                return
            if self._clean_shutdown:
                self._forget_clean_shutdown()

            def retire() -> None:
                for segment in old:
                    self._loaded.pop(segment, None)
                    self._deleted_files.extend((due, path) for path in segment.mark_deleted())
                self._unwritten_txn_indexes = [s for s in self._unwritten_txn_indexes if s not in old]

            swap_in(self.directory, group, retire)
            self._directory_changed = True
            cleaned = LogSegment.sealed(self.directory, group.base_offset, self.config, group.end_offset)
            cleaned.open_txn_index()
            self._set_segments([*self._segments[:number], cleaned, *self._segments[number + len(old) :]])
            if index < len(groups) - 1:
                yield True
        self._first_dirty_offset = result.first_dirty_offset
        yield True

    # -- flushing --------------------------------------------------------------------------------

    def needs_flush(self, now_ms: int | None = None) -> bool:
        """Whether flush_messages or flush_ms call for a flush now."""
        unflushed = self.unflushed_messages
        if not unflushed:
            return False
        now = self._clock() if now_ms is None else now_ms
        return unflushed >= self.config.flush_messages or now - self._last_flush_ms >= self.config.flush_ms

    def flush(self) -> int:
        """fsync everything appended so far; returns the new flushed offset.

        Safe to run in a worker thread while the log's own thread appends and reads: it syncs a
        snapshot and claims only the offsets that snapshot covered."""
        if self._closed:
            return self._flushed_offset
        return self._sync(with_active_indexes=False)

    def _sync(self, *, with_active_indexes: bool, advance_recovery_point: bool = True) -> int:
        with self._flush_lock:
            segments = self._segments
            active = segments[-1]
            end_offset = active.next_offset
            file = active.file  # held so that a roll meanwhile cannot close it under the fsync
            bases = [segment.base_offset for segment in segments]
            # Where recovery would start: everything from there on may have been appended,
            # sealed, trimmed or indexed since the last flush.
            first = self._recovery_start(bases)
            for segment in segments[first:-1]:
                segment.fsync(None, with_indexes=True)
            active.fsync(file, with_indexes=with_active_indexes)
            advance = advance_recovery_point and first < len(segments) - 1
            # Close writes every index. A flush moving the recovery point writes the active
            # segment's transaction index too: should it end there and roll, a crash trusts it.
            self._write_txn_indexes(segments if with_active_indexes else [active] if advance else [])
            if advance:
                write_checkpoint(self.directory / RECOVERY_POINT_CHECKPOINT, end_offset)
                self._recovery_point = end_offset
            self._sync_metadata()
            self._flushed_offset = max(self._flushed_offset, end_offset)
            self._last_flush_ms = self._clock()
            return self._flushed_offset

    def _write_txn_indexes(self, also: list[LogSegment]) -> None:
        """Write the transaction indexes that changed, of `also` and of the sealed segments noted
        since the last flush, and make their directory entries durable (under the flush lock).
        Last in a flush: the entry for a marker appended just before it started is in by then."""
        pending, self._unwritten_txn_indexes = self._unwritten_txn_indexes, []
        try:
            written = [segment.write_txn_index() for segment in [*pending, *also]]
        except LogStorageError:
            self._unwritten_txn_indexes += pending  # tried again by the next flush
            raise
        if any(written):
            try:
                fsync_directory(self.directory)
            except OSError as error:
                self._directory_changed = True
                raise LogStorageError(self.directory, error) from error

    def _sync_metadata(self) -> None:
        """Persist a moved log start offset, and changed directory entries (under the flush lock)."""
        directory_changed, self._directory_changed = self._directory_changed, False
        log_start_offset = self._log_start_offset
        first_dirty_offset = self._first_dirty_offset
        try:
            if first_dirty_offset != self._checkpointed_first_dirty_offset:
                write_checkpoint(self.directory / CLEANER_OFFSET_CHECKPOINT, first_dirty_offset)
                self._checkpointed_first_dirty_offset = first_dirty_offset
            if log_start_offset > self._checkpointed_log_start_offset:
                # Writing a checkpoint syncs the directory as well.
                write_checkpoint(self.directory / LOG_START_OFFSET_CHECKPOINT, log_start_offset)
                self._checkpointed_log_start_offset = log_start_offset
            elif directory_changed:
                try:
                    fsync_directory(self.directory)
                except OSError as error:
                    raise LogStorageError(self.directory, error) from error
        except LogStorageError:
            self._directory_changed |= directory_changed
            raise

    # -- closing ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Flush everything, write the indexes and leave the clean-shutdown marker, so the next open
        trusts the files instead of scanning them."""
        if self._closed:
            return
        active = self._segments[-1]
        active.write_indexes()
        active.trim()
        self._sync(with_active_indexes=True)
        try:
            (self.directory / CLEAN_SHUTDOWN_MARKER).touch()
        except OSError as error:
            raise LogStorageError(self.directory / CLEAN_SHUTDOWN_MARKER, error) from error
        self._closed = True
        active.file = None
        for segment in self._loaded:
            segment.unload()
        self._loaded.clear()
        try:
            # Whatever their delay: nothing reads through this log any more (reads holding a
            # file keep its bytes), and the next open would remove them anyway.
            self.remove_deleted_files(UNLIMITED)
        except LogStorageError:
            pass  # out of the log already: the next open removes them

    def _check_open(self) -> None:
        if self._closed:
            raise LogClosedError(f"the log in {self.directory} is closed")

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

