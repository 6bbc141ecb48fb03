"""One log segment: a .log file of record batches with its sparse offset index and time index."""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

from log.batch import (
    BASE_OFFSET,
    HEADER_SIZE,
    LOG_OVERHEAD,
    NO_TIMESTAMP,
    BatchInfo,
    parse_header,
    read_batch_info,
    verify_crc,
)
from log.config import LogConfig
from log.errors import CorruptLogError, InvalidRecordBatchError, LogStorageError
from log.file_records import FileRecords, SegmentFile
from log.index import IndexT, OffsetIndex, TimeIndex

# Offsets inside a segment are stored relative to its base offset in 4 bytes; Kafka keeps them
# within a signed int.
MAX_RELATIVE_OFFSET = (1 << 31) - 1
# Recovery reads the log in chunks of this size (grown for a larger batch).
_RECOVERY_CHUNK_BYTES = 8 * 1024 * 1024


def segment_file_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


class LogSegment:
    """A segment of a log, named by its base offset (the offset of its first batch).

    The active (last) segment holds its .log file open and its indexes in memory, and appends.
    A sealed segment never changes again: it opens its file and memory-maps its indexes on first
    use, and lets go of them when the log unloads it."""

    __slots__ = (
        "base_offset",
        "config",
        "log_path",
        "index_path",
        "time_index_path",
        "size",
        "next_offset",
        "file",
        "_unloaded_file",
        "_offset_index",
        "_time_index",
        "max_timestamp",
        "_offset_of_max_timestamp",
        "_bytes_since_index_entry",
        "_indexes_full",
        "_rolling_timestamp",
        "_created_ms",
    )

    def __init__(self, directory: Path, base_offset: int, config: LogConfig) -> None:
        self.base_offset = base_offset
        self.config = config
        self.log_path = directory / segment_file_name(base_offset, ".log")
        self.index_path = directory / segment_file_name(base_offset, ".index")
        self.time_index_path = directory / segment_file_name(base_offset, ".timeindex")
        self.size = 0
        # Offset after the segment's last batch: the next segment's base offset once sealed.
        self.next_offset = base_offset
        # Open while active, and while the log keeps a sealed segment loaded for reads.
        self.file: SegmentFile | None = None
        self._unloaded_file: weakref.ref[SegmentFile] | None = None
        self._offset_index: OffsetIndex | None = None
        self._time_index: TimeIndex | None = None
        # Largest batch max timestamp and the batch holding it; None while a sealed segment's
        # time index was never loaded.
        self.max_timestamp: int | None = NO_TIMESTAMP
        self._offset_of_max_timestamp = base_offset
        self._bytes_since_index_entry = 0
        self._indexes_full = False
        # Max timestamp of the first batch: segment_ms counts from it (Kafka's rollingBasedTimestamp).
        self._rolling_timestamp = NO_TIMESTAMP
        self._created_ms = 0

    # -- opening ---------------------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, base_offset: int, config: LogConfig, now_ms: int) -> LogSegment:
        """A new, empty active segment."""
        segment = cls(directory, base_offset, config)
        try:
            fd = os.open(segment.log_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as error:
            raise LogStorageError(segment.log_path, error) from error
        segment.file = SegmentFile(segment.log_path, fd)
        segment._reset_indexes(now_ms)
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
        return segment

    def resume(self, now_ms: int) -> bool:
        """Make this segment, left by a clean shutdown, the active one again.

        Reads the indexes and walks only the batch headers after the last offset index entry, so
        the cost does not grow with the segment. False when the files do not fit together; the
        caller then recovers the segment."""
        self.file = SegmentFile.open(self.log_path)
        self.size = self._file_size()
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
        except InvalidRecordBatchError:
            return False
        return time_index.is_consistent(self.size, self.next_offset - self.base_offset)

    def recover(self, now_ms: int) -> InvalidRecordBatchError | None:
        """Validate every batch (length, magic, CRC-32C, offsets following on from the base
        offset), cut the file at the first invalid byte and rebuild both indexes from what is left.

        Leaves the segment active (file open, indexes in memory). Returns what was invalid, if anything."""
        self.file = SegmentFile.open(self.log_path)
        self.size = self._file_size()
        valid_end, error = self._scan_and_index(now_ms)
        if error is not None:
            try:
                os.ftruncate(self.file.fd, valid_end)
            except OSError as truncate_error:
                raise LogStorageError(self.log_path, truncate_error) from truncate_error
            self.size = valid_end
        return error

    def _scan_and_index(self, now_ms: int) -> tuple[int, InvalidRecordBatchError | None]:
        """Rebuild the in-memory indexes from a scan of the whole file that checks each batch's
        length, magic, CRC-32C and that its offsets follow on; returns the end of the valid bytes
        and what was wrong with the batch there, if anything.

        One loop without generators or header objects: it runs once per batch of a 1 GiB segment."""
        file = self.file
        assert file is not None
        self._reset_indexes(now_ms)
        end = self.size
        buffer = memoryview(bytearray(_RECOVERY_CHUNK_BYTES))
        chunk_position = chunk_end = position = 0
        try:
            while position < end:
                if position + HEADER_SIZE > chunk_end:
                    chunk_position, chunk_end = position, position + _fill(file, buffer, position)
                base_offset, batch_length, _, _, crc, _, last_offset_delta, _, max_timestamp, _, _, _, _ = (
                    parse_header(buffer, position - chunk_position, end - position)
                )
                size = batch_length + LOG_OVERHEAD
                if position + size > chunk_end:
                    if size > len(buffer):
                        buffer = memoryview(bytearray(size))
                    chunk_position, chunk_end = position, position + _fill(file, buffer, position)
                verify_crc(buffer, position - chunk_position, batch_length, crc)
                _check_follows(base_offset, self.next_offset)
                self._add_to_indexes(base_offset, max_timestamp, size, position)
                self.next_offset = base_offset + last_offset_delta + 1
                position += size
        except InvalidRecordBatchError as error:
            return position, error
        return position, None

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
        the batch belongs in a new segment (Kafka's LogSegment.shouldRoll, without jitter). An
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
                or waited > config.segment_ms
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

    def _add_to_indexes(self, base_offset: int, max_timestamp: int, size: int, position: int) -> None:
        """Account for the batch just written at `position`, indexing it as Kafka's
        LogSegment.append does: once more than index_interval_bytes came since the last entry."""
        if max_timestamp > self.max_timestamp:
            self.max_timestamp = max_timestamp
            self._offset_of_max_timestamp = base_offset
        if not position:
            self._rolling_timestamp = max_timestamp
        if self._bytes_since_index_entry > self.config.index_interval_bytes:
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
        """Stop appending: write the index files and let go of the open file and in-memory indexes."""
        self.write_indexes()
        self.unload()

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
            batch = read_batch_info(file.pread(HEADER_SIZE, position), end - position, self.base_offset, position)
            _check_follows(batch.base_offset, expected_offset)
            yield batch
            position += batch.size
            expected_offset = batch.last_offset + 1

    def locate(self, file: SegmentFile, offset: int) -> BatchInfo:
        """The batch that holds `offset`, which must lie in this segment."""
        start_offset, start_position = self.offset_index.lookup(offset)
        try:
            for batch in self.batches(file, start_position, start_offset):
                if batch.last_offset >= offset:
                    return batch
        except InvalidRecordBatchError as error:
            raise CorruptLogError(self.log_path, start_position, f"while looking for offset {offset}: {error}") from error
        raise CorruptLogError(self.log_path, self.size, f"offset {offset} is missing from the segment")

    def read(self, offset: int, max_bytes: int, min_one_batch: bool) -> FileRecords:
        """The batches from the one holding `offset` on, up to `max_bytes`; that first batch whole
        even beyond `max_bytes` with min_one_batch, else nothing when it does not fit."""
        file = self.open_file()
        batch = self.locate(file, offset)
        if batch.size > max_bytes:
            return FileRecords(file, batch.position, batch.size if min_one_batch else 0)
        return FileRecords(file, batch.position, min(self.size - batch.position, max_bytes))

    def find_timestamp(self, timestamp: int, min_offset: int) -> BatchInfo | None:
        """The first batch with a max timestamp >= `timestamp` holding an offset >= `min_offset`."""
        start_offset, start_position = self.offset_index.lookup(max(self.time_index.lookup(timestamp), min_offset))
        file = self.open_file()
        try:
            for batch in self.batches(file, start_position, start_offset):
                if batch.max_timestamp >= timestamp and batch.last_offset >= min_offset:
                    return batch
        except InvalidRecordBatchError as error:
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
        """Index a sealed segment anew from its batches and write the index files. All batches must
        be valid: nothing may be cut from the middle of a log."""
        next_offset = self.next_offset
        self.open_file()
        try:
            valid_end, error = self._scan_and_index(0)
            if error is not None:
                raise CorruptLogError(self.log_path, valid_end, str(error))
            if valid_end != self.size or self.next_offset != next_offset:
                raise CorruptLogError(
                    self.log_path, valid_end, f"batches end at offset {self.next_offset}, the next segment starts at {next_offset}"
                )
            self.write_indexes()
        finally:
            self.next_offset = next_offset
        assert self._offset_index is not None and self._time_index is not None
        return self._offset_index, self._time_index

    def unload(self) -> None:
        """Let go of a sealed segment's file and indexes; reads still holding the file keep it open."""
        if self.file is not None:
            self._unloaded_file = weakref.ref(self.file)
        self.file = None
        self._offset_index = self._time_index = None

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
        for path in (self.log_path, self.index_path, self.time_index_path):
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                raise LogStorageError(path, error) from error


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
    if base_offset != expected_offset:
        raise InvalidRecordBatchError(
            f"batch has base offset {base_offset} where offset {expected_offset} was due"
        )


def _fill(file: SegmentFile, buffer: memoryview, position: int) -> int:
    try:
        return os.preadv(file.fd, [buffer], position)
    except OSError as error:
        raise LogStorageError(file.path, error) from error
