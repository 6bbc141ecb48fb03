"""One log segment: a .log file of record batches with its sparse offset index, time index and
transaction index."""

from __future__ import annotations

import errno
import logging
import os
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from log.batch import BatchInfo, batch_info, whole_batch_header
from log.config import LogConfig
from log.errors import CorruptLogError, LogStorageError
from log.file_records import FileRecords, SegmentFile
from log.index import IndexT, OffsetIndex, TimeIndex
from log.txn_index import AbortedTxn, TransactionIndex
from protocol.record_batch import (
    BASE_OFFSET,
    BATCH_HEADER,
    BATCH_HEADER_SIZE,
    LOG_OVERHEAD,
    NO_TIMESTAMP,
    CorruptBatchError,
    verify_crc,
)

# Offsets inside a segment are stored relative to its base offset in 4 bytes; Kafka keeps them
# within a signed int.
MAX_RELATIVE_OFFSET = (1 << 31) - 1
# Recovery reads the log in chunks of this size (grown for a larger batch).
_RECOVERY_CHUNK_BYTES = 8 * 1024 * 1024
# A read of batches this process has not checked yet checks them all (CRC-32C included) on the
# event loop's thread, so it serves at most this much beyond its first batch.
_CHECKED_READ_BYTES = 1024 * 1024

logger = logging.getLogger(__name__)


# Files of segments removed from the log, waiting for Log.remove_deleted_files.
DELETED_SUFFIX = ".deleted"


class SegmentInfo(NamedTuple):
    base_offset: int
    # Offset after the segment's last batch.
    next_offset: int
    size_in_bytes: int


def segment_file_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


class LogSegment:
    """A segment of a log, named by its base offset (the offset of its first batch).

    The active (last) segment holds its .log file open and its indexes in memory, and appends.
    A sealed segment never changes again: it opens its file and memory-maps its indexes on first
    use, and lets go of them when the log unloads it. Its transaction index is the exception: the
    broker may add entries again when it rebuilds one that was reset (recovery)."""

    __slots__ = (
        "base_offset",
        "config",
        "log_path",
        "index_path",
        "time_index_path",
        "txn_index_path",
        "size",
        "next_offset",
        "file",
        "_unloaded_file",
        "_offset_index",
        "_time_index",
        "_txn_index",
        "aborted_txn_count",
        "max_timestamp",
        "_offset_of_max_timestamp",
        "_bytes_since_index_entry",
        "_indexes_full",
        "_rolling_timestamp",
        "_created_ms",
        "_roll_jitter_ms",
        "_preallocated",
        "_unchecked_end",
        "_reported_damage",
    )

    def __init__(self, directory: Path, base_offset: int, config: LogConfig, roll_jitter_ms: int = 0,
                 suffix: str = "") -> None:
        self.base_offset = base_offset
        self.config = config
        # `suffix` after each file's name: the cleaner writes a segment beside the one it replaces.
        self.log_path = directory / (segment_file_name(base_offset, ".log") + suffix)
        self.index_path = directory / (segment_file_name(base_offset, ".index") + suffix)
        self.time_index_path = directory / (segment_file_name(base_offset, ".timeindex") + suffix)
        self.txn_index_path = directory / (segment_file_name(base_offset, ".txnindex") + suffix)
        self.size = 0
        # Offset after the segment's last batch: the next segment's base offset once sealed.
        self.next_offset = base_offset
        # Open while active, and while the log keeps a sealed segment loaded for reads.
        self.file: SegmentFile | None = None
        self._unloaded_file: weakref.ref[SegmentFile] | None = None
        self._offset_index: OffsetIndex | None = None
        self._time_index: TimeIndex | None = None
        # None while a sealed segment's entries are not loaded; their number is known anyway, so
        # that looking for aborted transactions skips segments without any.
        self._txn_index: TransactionIndex | None = None
        self.aborted_txn_count = 0
        # Largest batch max timestamp and the batch holding it; None while a sealed segment's
        # time index was never loaded.
        self.max_timestamp: int | None = NO_TIMESTAMP
        self._offset_of_max_timestamp = base_offset
        self._bytes_since_index_entry = 0
        self._indexes_full = False
        # Max timestamp of the first batch: segment_ms counts from it (Kafka's rollingBasedTimestamp).
        self._rolling_timestamp = NO_TIMESTAMP
        self._created_ms = 0
        # Taken off segment_ms for this segment (Kafka's rollJitterMs), so that segments created
        # together do not all roll together.
        self._roll_jitter_ms = roll_jitter_ms
        # The file was made segment_bytes long up front: trim() cuts it to the batches written.
        self._preallocated = False
        # Batches below this byte came from disk unchecked (a clean shutdown's files are trusted
        # at open) or hold damage: reads check them whole. Above it they were written or recovered.
        self._unchecked_end = 0
        # Byte positions of the damage already logged: one warning per damaged spot, not per read.
        self._reported_damage: set[int] = set()

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, base_offset: int, config: LogConfig, now_ms: int, roll_jitter_ms: int = 0,
               suffix: str = "") -> LogSegment:
        """A new, empty active segment."""
        segment = cls(directory, base_offset, config, roll_jitter_ms, suffix)
        try:
            fd = os.open(segment.log_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as error:
            raise LogStorageError(segment.log_path, error) from error
        segment.file = SegmentFile(segment.log_path, fd)
        segment._reset_indexes(now_ms)
        segment.reset_txn_index()
        return segment

    @classmethod
    def sealed(cls, directory: Path, base_offset: int, config: LogConfig, next_offset: int) -> LogSegment:
        """A segment found on disk that is not the last one; nothing is opened yet."""
        segment = cls(directory, base_offset, config)
        segment.next_offset = next_offset
        segment.max_timestamp = None
        try:
            segment.size = os.stat(segment.log_path).st_size
        except OSError as error:
            raise LogStorageError(segment.log_path, error) from error
        segment._unchecked_end = segment.size
        return segment

    def resume(self, now_ms: int) -> bool:
        """Make this segment, left by a clean shutdown, the active one again.

        Reads the indexes and walks only the batch headers after the last offset index entry, so
        the cost does not grow with the segment. False when the files do not fit together; the
        caller then recovers the segment."""
        self.file = SegmentFile.open(self.log_path)
        self.size = self._unchecked_end = self._file_size()
        self._created_ms = now_ms
        offset_index = OffsetIndex.load(self.index_path, self.base_offset, self.config.segment_index_bytes, writable=True)
        time_index = TimeIndex.load(self.time_index_path, self.base_offset, self.config.segment_index_bytes, writable=True)
        if offset_index is None or time_index is None:
            return False
        if not offset_index.is_consistent(self.size, MAX_RELATIVE_OFFSET + 1):
            return False
        self._offset_index, self._time_index = offset_index, time_index
        self._indexes_full = offset_index.is_full or time_index.is_full
        self.max_timestamp, self._offset_of_max_timestamp = time_index.last_entry or (NO_TIMESTAMP, self.base_offset)
        start_offset, start_position = offset_index.last_entry or (self.base_offset, 0)
        self.next_offset = start_offset
        self._bytes_since_index_entry = self.size - start_position
        try:
            for batch in self.batches(self.file, start_position, start_offset):
                self.next_offset = batch.last_offset + 1
                if batch.max_timestamp > self.max_timestamp:
                    self.max_timestamp, self._offset_of_max_timestamp = batch.max_timestamp, batch.base_offset
            if self.size:
                self._rolling_timestamp = next(self.batches(self.file, 0, self.base_offset)).max_timestamp
        except CorruptBatchError:
            return False
        return time_index.is_consistent(self.size, self.next_offset - self.base_offset)

    def recover(self, now_ms: int, next_segment_base: int | None = None) -> None:
        """Validate every batch (length, magic, CRC-32C, offsets following on from the base offset)
        and rebuild both indexes from the valid ones. The transaction index starts empty: markers
        appended since the last flush may be missing from it, and the broker adds them again.

        The last segment (no `next_segment_base`) is cut after its last valid batch: that is the
        torn tail of a crash. An earlier segment keeps its bytes, its damage is reported and reads
        of it answer CorruptLogError: cutting it would lose the valid batches of every later
        segment. Leaves the segment active (file open, indexes in memory)."""
        self.file = SegmentFile.open(self.log_path)
        self.size = self._file_size()
        self._unchecked_end = 0
        self.reset_txn_index()
        valid_end, damage = self._scan_and_index(now_ms, next_segment_base)
        if damage is not None and self._only_zeros_from(valid_end):
            # The unwritten rest of a preallocated file, not damage: nothing was lost.
            logger.info("%s: cut the %d zero bytes after the last batch", self.log_path, self.size - valid_end)
            damage = None
            self._truncate(valid_end)
        if next_segment_base is not None:
            self._report_unreadable_tail(valid_end, damage, next_segment_base)
            self.next_offset = next_segment_base
        elif damage is not None:
            position, offset, reason = damage
            logger.warning("%s: cut %d bytes from byte %d (offset %d) on, after the last valid batch: %s",
                           self.log_path, self.size - valid_end, position, offset, reason)
            self._truncate(valid_end)

    def _only_zeros_from(self, position: int) -> bool:
        """Whether the file holds zero bytes alone from `position` to its end; holes (the sparse
        rest of a preallocated file) are skipped unread."""
        file = self.file
        assert file is not None
        end = self.size
        try:
            while position < end:
                try:
                    position = os.lseek(file.fd, position, os.SEEK_DATA)
                except OSError as error:
                    if error.errno == errno.ENXIO:  # only a hole follows
                        return True
                    raise
                data_end = min(os.lseek(file.fd, position, os.SEEK_HOLE), end)
                while position < data_end:
                    chunk = os.pread(file.fd, min(data_end - position, _RECOVERY_CHUNK_BYTES), position)
                    if not chunk or chunk.count(0) != len(chunk):
                        return False
                    position += len(chunk)
        except OSError as error:
            raise LogStorageError(self.log_path, error) from error
        return True

    def _truncate(self, size: int) -> None:
        """Set the length of the open file (and of the segment) to `size` bytes."""
        assert self.file is not None
        try:
            os.ftruncate(self.file.fd, size)
        except OSError as error:
            raise LogStorageError(self.log_path, error) from error
        self.size = min(self.size, size)

    def _scan_and_index(self, now_ms: int, next_segment_base: int | None) -> tuple[int, tuple[int, int, str] | None]:
        """Rebuild the in-memory indexes from a scan of the whole file that checks each batch's
        length, magic, CRC-32C and that its offsets follow on (and end before `next_segment_base`).

        A damaged batch is stepped over when its length (outside the CRC) leads to a valid batch:
        its offsets end where that one's start; it is reported and left for reads to refuse.
        Returns the end of the last valid batch and, when the bytes from there on are not valid
        batches, (byte, offset, reason) of where that starts.

        One loop without generators, reading the header's fields into locals once: it runs once per
        batch of a 1 GiB segment."""
        file = self.file
        assert file is not None
        self._reset_indexes(now_ms)
        end = self.size
        buffer = memoryview(bytearray(_RECOVERY_CHUNK_BYTES))
        chunk_position = chunk_end = position = valid_end = 0
        while position < end:
            try:
                if position + BATCH_HEADER_SIZE > chunk_end:
                    chunk_position, chunk_end = position, position + _fill(file, buffer, position)
                header = whole_batch_header(buffer, position - chunk_position, end - position)
                base_offset, batch_length, _, _, _, _, last_offset_delta, _, max_timestamp, _, _, _, _ = header
                size = batch_length + LOG_OVERHEAD
                if position + size > chunk_end:
                    if size > len(buffer):
                        buffer = memoryview(bytearray(size))
                    chunk_position, chunk_end = position, position + _fill(file, buffer, position)
                verify_crc(buffer, header, position - chunk_position)
                _check_follows(base_offset, self.next_offset)
                last_offset = base_offset + last_offset_delta
                if next_segment_base is not None and last_offset >= next_segment_base:
                    raise CorruptBatchError(f"batch ends at offset {last_offset}, past the next segment's base {next_segment_base}")
            except CorruptBatchError as error:
                damage = (position, self.next_offset, str(error))
                after = self._valid_batch_after(file, position, self.next_offset)
                if after is None:
                    return valid_end, damage
                self._report(*damage, resume_offset=after.base_offset)
                self._unchecked_end = end
                position, self.next_offset = after.position, after.base_offset
                continue
            self._add_to_indexes(base_offset, max_timestamp, size, position)
            self.next_offset = last_offset + 1
            position += size
            valid_end = position
        return valid_end, None

    def _report_unreadable_tail(self, valid_end: int, damage: tuple[int, int, str] | None, next_segment_base: int) -> None:
        """Log what a sealed segment's scan found unreadable at its end; reads of it check every batch.
        Batches ending before the next segment's base are no damage: the cleaner removed the last."""
        if damage is not None:
            self._report(*damage, resume_offset=next_segment_base)
            self._unchecked_end = self.size

    def _report(self, position: int, offset: int, reason: str, *, resume_offset: int) -> CorruptLogError:
        """The error for damage at `position` (whose first offset is `offset`), logged the first time."""
        error = CorruptLogError(self.log_path, position, reason, offset=offset, resume_offset=resume_offset)
        if position not in self._reported_damage:
            self._reported_damage.add(position)
            logger.warning("damaged record batches in %s; offsets %d to %d cannot be read",
                           error, offset, resume_offset - 1)
        return error

    def _reset_indexes(self, now_ms: int) -> None:
        limit = self.config.segment_index_bytes
        self._offset_index = OffsetIndex.empty(self.index_path, self.base_offset, limit)
        self._time_index = TimeIndex.empty(self.time_index_path, self.base_offset, limit)
        self.next_offset = self.base_offset
        self.max_timestamp = NO_TIMESTAMP
        self._offset_of_max_timestamp = self.base_offset
        self._bytes_since_index_entry = 0
        self._indexes_full = False
        self._rolling_timestamp = NO_TIMESTAMP
        self._created_ms = now_ms

    def _file_size(self) -> int:
        assert self.file is not None
        try:
            return os.fstat(self.file.fd).st_size
        except OSError as error:
            raise LogStorageError(self.log_path, error) from error

    # -- appending -------------------------------------------------------------------------------

    def try_append(self, batch: memoryview, max_timestamp: int, last_offset_delta: int, clock: Callable[[], int]) -> int | None:
        """Write the batch with its base offset set to this segment's next offset (in the buffer
        itself when it is writable) and return its position; or return None, writing nothing, when
        the batch belongs in a new segment (Kafka's LogSegment.shouldRoll). An
        empty segment takes any batch: the log rejects those larger than a segment."""
        position = self.size
        size = len(batch)
        base_offset = self.next_offset
        if position:
            config = self.config
            if self._rolling_timestamp >= 0:
                waited = max_timestamp - self._rolling_timestamp
            else:
                waited = clock() - self._created_ms
            if (
                position > config.segment_bytes - size
                or self._indexes_full
                or waited + self._roll_jitter_ms > config.segment_ms
                or base_offset + last_offset_delta - self.base_offset > MAX_RELATIVE_OFFSET
            ):
                return None
        fd = self.file.fd  # only the active segment appends: its file is open
        try:
            if batch.readonly:
                written = os.pwritev(fd, [BASE_OFFSET.pack(base_offset), batch[8:]], position)
            else:
                # As Kafka does: set the offset in the caller's buffer and write it in one piece.
                BASE_OFFSET.pack_into(batch, 0, base_offset)
                written = os.pwrite(fd, batch, position)
        except OSError as error:
            self._undo_write(position)
            raise LogStorageError(self.log_path, error) from error
        if written != size:
            self._undo_write(position)
            raise LogStorageError(self.log_path, f"short write: {written} of {size} bytes")
        self.size = position + size
        self.next_offset = base_offset + last_offset_delta + 1
        self._add_to_indexes(base_offset, max_timestamp, size, position)
        return position

    def _undo_write(self, position: int) -> None:
        """Drop a partly written batch so the file stays a sequence of whole batches."""
        assert self.file is not None
        try:
            os.ftruncate(self.file.fd, position)
        except OSError:
            pass  # recovery cuts the torn batch off at the next open

    def copy_in(self, batch: bytes | bytearray | memoryview, base_offset: int, last_offset: int, max_timestamp: int) -> None:
        """Write a batch of a log being cleaned as it is, its offsets kept (they must rise): how the
        cleaner fills the segment that replaces those it cleaned."""
        position = self.size
        try:
            written = os.pwrite(self.file.fd, batch, position)
        except OSError as error:
            raise LogStorageError(self.log_path, error) from error
        if written != len(batch):
            raise LogStorageError(self.log_path, f"short write: {written} of {len(batch)} bytes")
        self.size = position + written
        self.next_offset = last_offset + 1
        self._add_to_indexes(base_offset, max_timestamp, written, position)

    def due_to_roll(self, now_ms: int) -> bool:
        """Whether this active segment, holding batches, is older than segment_ms (its jitter taken
        off): the roll a quiet compacted log needs so that its last records can be cleaned."""
        if not self.size:
            return False
        start = self._rolling_timestamp if self._rolling_timestamp >= 0 else self._created_ms
        return now_ms - start + self._roll_jitter_ms > self.config.segment_ms

    def _add_to_indexes(self, base_offset: int, max_timestamp: int, size: int, position: int) -> None:
        """Account for the batch just written at `position`, indexing it as Kafka's
        LogSegment.append does: once more than index_interval_bytes came since the last entry."""
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self._offset_of_max_timestamp = base_offset
        if not position:
            self._rolling_timestamp = max_timestamp
        if self._bytes_since_index_entry > self.config.index_interval_bytes and not self._indexes_full:
            offset_index, time_index = self._offset_index, self._time_index
            offset_index.append(base_offset, position)
            time_index.maybe_append(self.max_timestamp, self._offset_of_max_timestamp)
            self._indexes_full = offset_index.is_full or time_index.is_full
            self._bytes_since_index_entry = 0
        self._bytes_since_index_entry += size

    def write_indexes(self) -> None:
        """Store the active segment's indexes, the time index ending with its largest timestamp."""
        assert self._offset_index is not None and self._time_index is not None and self.max_timestamp is not None
        if self.max_timestamp != NO_TIMESTAMP:
            self._time_index.maybe_append(self.max_timestamp, self._offset_of_max_timestamp)
        self._offset_index.write()
        self._time_index.write()

    def seal(self) -> None:
        """Stop appending: write the index files, trim the file, and let go of the open file and
        in-memory indexes."""
        self.write_indexes()
        self.trim()
        self.unload()

    def preallocate(self) -> None:
        """With config.preallocate, make a new active segment's file segment_bytes long at once (as
        Kafka's FileRecords sets its length: sparse where the file system allows)."""
        if self.config.preallocate:
            self._truncate(self.config.segment_bytes)
            self._preallocated = True

    def trim(self) -> None:
        """Cut a preallocated file to the batches written (Kafka's FileRecords.trim), once the
        segment stops growing: sealed, or its log closed."""
        if self._preallocated:
            self._truncate(self.size)
            self._preallocated = False

    # -- reading ---------------------------------------------------------------------------------

    def open_file(self) -> SegmentFile:
        """The segment's open file; a sealed segment opens it on first use and keeps it until unloaded."""
        if self.file is None:
            # Reads may still hold the file opened before the segment was last unloaded: share it.
            earlier = self._unloaded_file and self._unloaded_file()
            self.file = earlier or SegmentFile.open(self.log_path)
        return self.file

    def batches(self, file: SegmentFile, position: int, first_offset: int) -> Iterator[BatchInfo]:
        """Each batch from `position`, where a batch with base offset `first_offset` must start, to
        the end of the segment as it is now; reads the headers only."""
        end = self.size
        expected_offset = first_offset
        while position < end:
            header = whole_batch_header(file.pread(BATCH_HEADER_SIZE, position), 0, end - position)
            _check_follows(header.base_offset, expected_offset)
            yield batch_info(header, self.base_offset, position)
            position += header.size
            expected_offset = header.next_offset

    def locate(self, file: SegmentFile, offset: int) -> BatchInfo | None:
        """The batch that holds `offset`, which must lie in this segment, or the first after it (a
        cleaned segment has gaps); None when the batches end before it. Batches not checked yet
        are checked whole on the way (CRC-32C included), and a damaged one is stepped over when
        the batch after it is valid and `offset` lies beyond it.

        Raises CorruptLogError when damage covers `offset`."""
        expected, position = self.offset_index.lookup(offset)
        while position < self.size:
            try:
                batch = self._batch_at(file, position, check_crc=position < self._unchecked_end)
                _check_follows(batch.base_offset, expected)
            except CorruptBatchError as error:
                after = self._valid_batch_after(file, position, expected)
                if after is None or after.base_offset > offset:
                    resume_offset = self.next_offset if after is None else after.base_offset
                    raise self._report(position, expected, str(error), resume_offset=resume_offset) from error
                batch = after
            if batch.last_offset >= offset:
                return batch
            position, expected = batch.position + batch.size, batch.last_offset + 1
        return None

    def _batch_at(self, file: SegmentFile, position: int, *, check_crc: bool) -> BatchInfo:
        """The batch at `position`, read whole to verify its CRC-32C with `check_crc`."""
        header = whole_batch_header(file.pread(BATCH_HEADER_SIZE, position), 0, self.size - position)
        if check_crc:
            verify_crc(file.pread(header.size, position), header)
        return batch_info(header, self.base_offset, position)

    def _valid_batch_after(self, file: SegmentFile, position: int, expected_offset: int) -> BatchInfo | None:
        """The batch right after the damaged one at `position`, if that one's length (outside its
        CRC) leads to a valid batch with offsets beyond `expected_offset`."""
        header = file.pread(BATCH_HEADER_SIZE, position)
        if len(header) < BATCH_HEADER_SIZE:
            return None
        after = position + BATCH_HEADER.unpack_from(header)[1] + LOG_OVERHEAD
        if not position < after < self.size:
            return None
        try:
            batch = self._batch_at(file, after, check_crc=True)
        except CorruptBatchError:
            return None
        return batch if batch.base_offset > expected_offset else None

    def _checked_end(self, file: SegmentFile, position: int, end: int, expected_offset: int) -> int:
        """Where the bytes from `position` to `end` stop being valid batches (`end` when they do
        not), checking those this process did not write or recover; the last batch may run past
        `end`, cut short there as reads cut it."""
        data = memoryview(file.pread(end - position, position))
        start = position
        while position < min(end, self._unchecked_end) and end - position >= BATCH_HEADER_SIZE:
            try:
                header = whole_batch_header(data, position - start, self.size - position)
                if position + header.size > end:
                    break
                verify_crc(data, header, position - start)
                _check_follows(header.base_offset, expected_offset)
            except CorruptBatchError:
                return position  # the read stops before the damage; a read of it reports it
            position += header.size
            expected_offset = header.next_offset
        return end

    def read(self, offset: int, max_bytes: int, min_one_batch: bool, max_offset: int | None = None) -> FileRecords | None:
        """The batches from the one holding `offset` (or the first after it) on, up to `max_bytes`
        and none with a base offset >= `max_offset` (> `offset`); that first batch whole even beyond
        `max_bytes` with min_one_batch, else nothing when it does not fit. None when no batch here
        holds `offset` or a later one. Stops before a damaged batch; raises CorruptLogError when the
        one holding `offset` (or `max_offset`) is damaged."""
        file = self.open_file()
        batch = self.locate(file, offset)
        if batch is None:
            return None
        if max_offset is not None and batch.base_offset >= max_offset:
            return FileRecords(file, batch.position, 0)
        if batch.size > max_bytes:
            return FileRecords(file, batch.position, batch.size if min_one_batch else 0)
        end = batch.position + min(self.size - batch.position, max_bytes)
        if max_offset is not None and max_offset < self.next_offset:
            limit = self.locate(file, max_offset)
            if limit is not None:
                end = min(end, limit.position if limit.base_offset >= max_offset else limit.position + limit.size)
        rest = batch.position + batch.size
        if rest < min(end, self._unchecked_end):
            end = self._checked_end(file, rest, min(end, rest + _CHECKED_READ_BYTES), batch.last_offset + 1)
        return FileRecords(file, batch.position, end - batch.position)

    def upper_bound_offset(self, end_position: int) -> int:
        """An offset no batch ending at or before `end_position` reaches: the first indexed one at
        or after it, else the segment's next offset (Kafka's fetchUpperBoundOffset)."""
        found = self.offset_index.first_offset_at_or_after(end_position)
        return self.next_offset if found is None else found

    def find_timestamp(self, timestamp: int, min_offset: int) -> BatchInfo | None:
        """The first batch with a max timestamp >= `timestamp` holding an offset >= `min_offset`."""
        start_offset, start_position = self.offset_index.lookup(max(self.time_index.lookup(timestamp), min_offset))
        file = self.open_file()
        try:
            for batch in self.batches(file, start_position, start_offset):
                if batch.max_timestamp >= timestamp and batch.last_offset >= min_offset:
                    return batch
        except CorruptBatchError as error:
            raise CorruptLogError(self.log_path, start_position, f"while looking for timestamp {timestamp}: {error}") from error
        return None

    def largest_batch_timestamp(self) -> int:
        """The largest batch max timestamp, NO_TIMESTAMP when no batch has one."""
        if self.max_timestamp is None:
            # A sealed segment's time index ends with its largest timestamp.
            self.max_timestamp = (self.time_index.last_entry or (NO_TIMESTAMP, 0))[0]
        return self.max_timestamp

    def largest_timestamp(self) -> int:
        """The largest batch max timestamp, or the file's modification time when no batch has one
        (what Kafka's time-based retention goes by)."""
        largest = self.largest_batch_timestamp()
        if largest != NO_TIMESTAMP:
            return largest
        try:
            return os.stat(self.log_path).st_mtime_ns // 1_000_000
        except OSError as error:
            raise LogStorageError(self.log_path, error) from error

    # -- sealed segments' indexes ----------------------------------------------------------------

    @property
    def offset_index(self) -> OffsetIndex:
        """The offset index; a sealed segment maps its file on first use (rebuilding it from the log
        when missing or inconsistent)."""
        if self._offset_index is None:
            self._offset_index = self._load_index(OffsetIndex, self.index_path)
            if self._offset_index is None:
                return self.rebuild_indexes()[0]
        return self._offset_index

    @property
    def time_index(self) -> TimeIndex:
        """The time index, loaded like the offset index."""
        if self._time_index is None:
            self._time_index = self._load_index(TimeIndex, self.time_index_path)
            if self._time_index is None:
                return self.rebuild_indexes()[1]
        return self._time_index

    def _load_index(self, kind: type[IndexT], path: Path) -> IndexT | None:
        """A sealed segment's index file, or None when it is missing or fails Kafka's sanity check."""
        index = kind.load(path, self.base_offset, self.config.segment_index_bytes, writable=False)
        if index is None or not index.is_consistent(self.size, self.next_offset - self.base_offset):
            return None
        return index

    def rebuild_indexes(self) -> tuple[OffsetIndex, TimeIndex]:
        """Index a sealed segment anew from its batches and write the index files. Damage is
        reported, not cut: nothing may be cut from the middle of a log."""
        next_offset = self.next_offset
        self.open_file()
        try:
            valid_end, damage = self._scan_and_index(0, next_offset)
            self._report_unreadable_tail(valid_end, damage, next_offset)
            self.write_indexes()
        finally:
            self.next_offset = next_offset
        assert self._offset_index is not None and self._time_index is not None
        return self._offset_index, self._time_index

    def unload(self) -> None:
        """Let go of a sealed segment's file and indexes; reads still holding the file keep it open.
        A transaction index stays while the flush has yet to write it, or has no entries."""
        if self.file is not None:
            self._unloaded_file = weakref.ref(self.file)
        self.file = None
        self._offset_index = self._time_index = None
        if self._txn_index is not None and not self._txn_index.dirty and self.aborted_txn_count:
            self._txn_index = None

    # -- aborted transactions --------------------------------------------------------------------

    def open_txn_index(self) -> bool:
        """Check the .txnindex found on disk (a sealed segment lets go of its entries until used).
        False, with an empty index in its place, when it is missing or unreadable."""
        try:
            index = TransactionIndex.load(self.txn_index_path, self.base_offset, self.next_offset)
        except CorruptLogError as error:
            logger.warning("unreadable transaction index %s; reset, the broker adds its entries again", error)
            index = None
        if index is None:
            self.reset_txn_index()
            return False
        self._txn_index, self.aborted_txn_count = index, len(index)
        return True

    def reset_txn_index(self) -> None:
        self._txn_index = TransactionIndex.empty(self.txn_index_path)
        self.aborted_txn_count = 0

    @property
    def txn_index(self) -> TransactionIndex:
        """The transaction index, read from its file on first use by a sealed segment."""
        if self._txn_index is None:
            index = TransactionIndex.load(self.txn_index_path, self.base_offset, self.next_offset)
            if index is None:
                raise CorruptLogError(self.txn_index_path, 0, "the transaction index is gone")
            self._txn_index, self.aborted_txn_count = index, len(index)
        return self._txn_index

    def add_aborted_txn(self, entry: AbortedTxn) -> bool:
        """Add `entry` unless an entry with its last offset is there; whether it was added."""
        index = self.txn_index
        if not index.add(entry):
            return False
        self.aborted_txn_count = len(index)
        return True

    def write_txn_index(self) -> bool:
        """Durably replace the .txnindex file if the index changed since it was written (or it
        never was); whether it wrote. The flush does it, off the appending thread."""
        index = self._txn_index
        if index is None or not index.dirty:
            return False
        index.write()
        return True

    # -- durability and deletion -----------------------------------------------------------------

    def fsync(self, file: SegmentFile | None, *, with_indexes: bool) -> None:
        """Make the segment durable through `file` (the active segment's, held by the caller) or by
        path. A segment deleted meanwhile needs nothing."""
        try:
            if file is not None:
                os.fsync(file.fd)
            else:
                _fsync_path(self.log_path)
            if with_indexes:
                _fsync_path(self.index_path)
                _fsync_path(self.time_index_path)
        except OSError as error:
            raise LogStorageError(self.log_path, error) from error

    def delete(self) -> None:
        """Remove the segment's files; reads still holding its file keep working."""
        self.unload()
        self._txn_index = None
        for path in (self.log_path, self.index_path, self.time_index_path, self.txn_index_path):
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                raise LogStorageError(path, error) from error

    def mark_deleted(self) -> list[Path]:
        """Rename the segment's files `<name>.deleted`, out of the log, and return their new paths
        for removal later. As Kafka does: unlinking a large file whose pages are still being written
        back can block for hundreds of milliseconds, a rename does not."""
        self.unload()
        self._txn_index = None
        marked = []
        for path in (self.log_path, self.index_path, self.time_index_path, self.txn_index_path):
            target = path.with_name(path.name + DELETED_SUFFIX)
            try:
                path.rename(target)
            except FileNotFoundError:
                continue
            except OSError as error:
                raise LogStorageError(path, error) from error
            marked.append(target)
        return marked


def _fsync_path(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_follows(base_offset: int, expected_offset: int) -> None:
    """Offsets rise from batch to batch; they may leave gaps, where the cleaner removed batches."""
    if base_offset < expected_offset:
        raise CorruptBatchError(
            f"batch has base offset {base_offset}, below offset {expected_offset}, which was due"
        )


def _fill(file: SegmentFile, buffer: memoryview, position: int) -> int:
    try:
        return os.preadv(file.fd, [buffer], position)
    except OSError as error:
        raise LogStorageError(file.path, error) from error
