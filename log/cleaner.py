"""The log cleaner (Kafka's log compaction): rewrites a log's sealed segments keeping, of each key,
only its latest record.

A pass has three steps, so that the log's own thread (the event loop) does only the cheap ones:
1. `Log.cleaning_plan` (the log's thread) says what to clean: the sealed segments from the log
   start to the first uncleanable one, where the dirty section (not cleaned yet) starts, and the
   aborted transactions and active producers the cleaner must respect.
2. `clean(plan)` (a worker thread or process: it only reads the plan's files and writes new ones)
   maps each key of the dirty section to the offset of its latest record, in a map of bounded size
   (Kafka's log.cleaner.dedupe.buffer.size), then writes each group of segments, up to
   segment_bytes together, into one `<base>.log.cleaned` segment with its indexes, synced.
3. `Log.swap_in_groups(result)` (the log's thread) swaps the cleaned segments in by renames,
   group by group.

Crash safety, as Kafka's `.cleaned`/`.swap` protocol: a cleaned segment is complete and synced
before anything refers to it. Renaming its `.log` to `<base>.log.<end>.swap` decides the swap; the
old segments' files are then renamed `.deleted` and the cleaned ones to their final names. A start
finds one of: only `.cleaned` files (removed: the old segments are whole), a `.swap` (finished:
every segment in [base, end) is an old one, removed, and the swap renamed), or the finished swap.
Each rename follows one whose data was synced, so every prefix of the sequence is one of these.
A read holding an old segment's file keeps reading the bytes it started with.

What is kept, as Kafka's cleaner keeps it:
- the latest record of each key (offsets and timestamps unchanged; consumers see gaps), records
  beyond the mapped part of the dirty section, and the records of keys the map does not hold;
- a tombstone (null value) until delete_retention_ms after the pass that first kept it as a key's
  latest (KIP-534: the batch carries that horizon in its base timestamp);
- no record of an aborted transaction; a transaction's marker until its transaction's batches are
  all gone and then its own horizon has passed (an ABORT keeps its transaction index entry);
- the last batch of each active producer, emptied of its records if need be, with its producer id,
  epoch and sequence (and a marker carrying a producer's last epoch): a restart rebuilds the
  producer state from them;
- a batch whose records are all kept, as it was; others rebuilt with the records kept.
Records without a key are removed (Kafka counts them invalid in a compacted log)."""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import hashlib
import os
import pickle
import re
import resource
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

from log.batch import whole_batch_header
from log.checkpoint import fsync_directory
from log.config import LogConfig
from log.errors import CorruptLogError, LogStorageError
from log.file_records import SegmentFile
from log.segment import MAX_RELATIVE_OFFSET, LogSegment, SegmentInfo, segment_file_name
from log.txn_index import AbortedTxn
from protocol import records
from protocol.errors import ProtocolError
from protocol.record_batch import BATCH_HEADER_SIZE, BatchHeader, CorruptBatchError, verify_crc

CLEANED_SUFFIX = ".cleaned"
_SWAP_SUFFIX = ".swap"
# The kinds of segment file, the .log last: its rename is the one that decides a swap.
_INDEX_KINDS = (".index", ".timeindex", ".txnindex")
SWAP_FILE = re.compile(r"(\d{20})\.log\.(\d{20})\.swap")
# What an interrupted pass leaves: cleaned files, and index swaps whose .log was not renamed yet.
CLEANING_LEFTOVER = re.compile(r"\d{20}\.(log|index|timeindex|txnindex)\.cleaned(\.tmp)?|\d{20}\.(index|timeindex|txnindex)\.swap")
# Batches are read from a segment in chunks of this size (grown for a larger batch).
_READ_CHUNK_BYTES = 1024 * 1024


class LastRecord(NamedTuple):
    """An active producer's last batch in the log, as the cleaner must keep it: the last offset of
    its last data batch (None when its last entry is a marker) and its epoch."""

    last_data_offset: int | None
    producer_epoch: int


class OffsetMap:
    """Key -> offset of the key's latest record, holding at most as many keys as `buffer_bytes`
    allows at ENTRY_BYTES each (Kafka's SkimpyOffsetMap). Keys longer than 15 bytes are held as
    their 16-byte BLAKE2b digest, as Kafka holds an MD5: memory does not grow with key size, and
    a collision (which would lose a record) is as unlikely as in Kafka."""

    # What one entry costs in a dict: its key as a bytes object (up to 16 bytes), the offset as an
    # int, and the dict's slot. Measured by tests/log/test_cleaner.py.
    ENTRY_BYTES = 160

    def __init__(self, buffer_bytes: int) -> None:
        self.capacity = max(1, buffer_bytes // self.ENTRY_BYTES)
        self._offsets: dict[bytes, int] = {}
        # The last offset whose record was mapped (or skipped as no key's latest).
        self.latest_offset = -1

    def __len__(self) -> int:
        return len(self._offsets)

    @staticmethod
    def _slot(key: bytes | memoryview) -> bytes:
        return bytes(key) if len(key) < 16 else hashlib.blake2b(key, digest_size=16).digest()

    def put(self, key: bytes | memoryview, offset: int) -> bool:
        """Map `key` to `offset`; False, mapping nothing, when the map is full and `key` is new."""
        slot = self._slot(key)
        offsets = self._offsets
        if slot not in offsets and len(offsets) >= self.capacity:
            return False
        offsets[slot] = offset
        return True

    def get(self, key: bytes | memoryview) -> int:
        """The offset `key` maps to; -1 when not mapped."""
        return self._offsets.get(self._slot(key), -1)


@dataclasses.dataclass(frozen=True)
class CleaningPlan:
    """One pass over a log, made by Log.cleaning_plan; plain data, so that it can go to a process."""

    directory: Path
    config: LogConfig
    # The sealed segments the pass may rewrite, from the log start on; the dirty section is the
    # part of them from first_dirty_offset on.
    segments: tuple[SegmentInfo, ...]
    first_dirty_offset: int
    aborted: tuple[AbortedTxn, ...]
    producers: dict[int, LastRecord]
    now_ms: int
    buffer_bytes: int


class CleanedGroup(NamedTuple):
    """Segments the pass replaced by one cleaned segment, written with CLEANED_SUFFIX at the first
    one's base offset."""

    replaced: tuple[SegmentInfo, ...]

    @property
    def base_offset(self) -> int:
        return self.replaced[0].base_offset

    @property
    def end_offset(self) -> int:
        return self.replaced[-1].next_offset


@dataclasses.dataclass
class CleaningResult:
    groups: list[CleanedGroup]
    # Where the next pass's dirty section starts: after the part of this one the map covered.
    first_dirty_offset: int
    bytes_read: int = 0
    bytes_written: int = 0
    records_read: int = 0
    records_kept: int = 0
    keys_mapped: int = 0
    # The largest resident set of the process that ran the pass (0 when not measured).
    peak_memory_bytes: int = 0


def clean(plan: CleaningPlan) -> CleaningResult:
    """Write the cleaned segments of `plan` (see the module docstring); the log is not changed.
    Raises CorruptLogError for damage in a segment, LogStorageError when a file cannot be read
    (retention may have removed it meanwhile) or written; then no cleaned file is left."""
    offset_map = OffsetMap(plan.buffer_bytes)
    dirty = [segment for segment in plan.segments if segment.next_offset > plan.first_dirty_offset]
    result = CleaningResult([], plan.first_dirty_offset)
    if not dirty:
        return result
    _map_dirty_section(plan, dirty, offset_map)
    end = offset_map.latest_offset + 1
    result.first_dirty_offset, result.keys_mapped = end, len(offset_map)
    transactions = _Transactions(plan.aborted)
    written: list[Path] = []
    try:
        for group in _groups([s for s in plan.segments if s.base_offset < end], plan.config.segment_bytes):
            written += _clean_group(plan, group, offset_map, transactions, result)
            result.groups.append(group)
        fsync_directory(plan.directory)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return result


def _map_dirty_section(plan: CleaningPlan, dirty: list[SegmentInfo], offset_map: OffsetMap) -> None:
    """Map the keys of the dirty section, segment after segment, until the map is full."""
    start = plan.first_dirty_offset
    transactions = _Transactions(plan.aborted)
    for segment in dirty:
        for header, batch in _batches(plan.directory, segment):
            if header.is_control:
                transactions.on_marker(header, batch)
            elif not transactions.on_data(header) and header.last_offset >= start:
                _, stored = records.stored_records(header, batch)
                for record in stored:
                    if record.key is not None and record.offset >= start and not offset_map.put(record.key, record.offset):
                        return  # full: the pass cleans up to the last batch mapped whole
            if header.last_offset >= start:
                offset_map.latest_offset = max(offset_map.latest_offset, header.last_offset)
        # Past a gap at the segment's end (the cleaner removed its last batches) too.
        offset_map.latest_offset = max(offset_map.latest_offset, segment.next_offset - 1)


def _groups(segments: list[SegmentInfo], max_bytes: int) -> Iterator[CleanedGroup]:
    """Consecutive segments together up to `max_bytes` (and offsets a segment can index): each
    group becomes one cleaned segment, so that small cleaned segments merge."""
    group: list[SegmentInfo] = []
    size = 0
    for segment in segments:
        if group and (size + segment.size_in_bytes > max_bytes
                      or segment.next_offset - 1 - group[0].base_offset > MAX_RELATIVE_OFFSET):
            yield CleanedGroup(tuple(group))
            group, size = [], 0
        group.append(segment)
        size += segment.size_in_bytes
    if group:
        yield CleanedGroup(tuple(group))


def _clean_group(plan: CleaningPlan, group: CleanedGroup, offset_map: OffsetMap, transactions: _Transactions,
                 result: CleaningResult) -> list[Path]:
    """Write the cleaned segment of `group`, synced; the paths of its files."""
    cleaned = LogSegment.create(plan.directory, group.base_offset, plan.config, plan.now_ms, suffix=CLEANED_SUFFIX)
    paths = [cleaned.log_path, cleaned.index_path, cleaned.time_index_path, cleaned.txn_index_path]
    transactions.index = cleaned
    try:
        for segment in group.replaced:
            for header, batch in _batches(plan.directory, segment):
                result.bytes_read += header.size
                result.records_read += header.records_count
                kept = _cleaned_batch(plan, header, batch, offset_map, transactions)
                if kept is not None:
                    kept_header = whole_batch_header(kept, 0, len(kept))
                    cleaned.copy_in(kept, header.base_offset, header.last_offset, kept_header.max_timestamp)
                    result.bytes_written += len(kept)
                    result.records_kept += kept_header.records_count
        cleaned.seal()
        cleaned.write_txn_index()
        cleaned.fsync(None, with_indexes=True)
        # As Kafka does: the cleaned segment keeps the last one's age, which time-based retention
        # of batches without timestamps goes by.
        last = plan.directory / segment_file_name(group.replaced[-1].base_offset, ".log")
        stat = os.stat(last)
        os.utime(cleaned.log_path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    except OSError as error:
        raise LogStorageError(cleaned.log_path, error) from error
    finally:
        transactions.index = None
    return paths


def _cleaned_batch(plan: CleaningPlan, header: BatchHeader, batch: memoryview, offset_map: OffsetMap,
                   transactions: _Transactions) -> bytes | bytearray | memoryview | None:
    """What of one batch the cleaned segment holds: the batch itself, a rebuilt one with fewer
    records (or none), or nothing (None)."""
    now = plan.now_ms
    horizon = header.delete_horizon_ms
    if header.is_control:
        discardable = transactions.on_marker(header, batch)
        discard_records = discardable and horizon is not None and horizon <= now
    else:
        discardable = discard_records = transactions.on_data(header)
    keep_empty = header.producer_id >= 0 and _is_last_of_producer(plan.producers.get(header.producer_id), header)
    if discard_records and not keep_empty:
        return None
    section, stored = records.stored_records(header, batch)
    if discard_records:
        kept = []
    elif header.is_control:
        kept = stored
    else:
        latest = offset_map.latest_offset
        kept = [
            record for record in stored
            if record.offset > latest or (
                record.key is not None and record.offset >= offset_map.get(record.key)
                and (record.has_value or horizon is None or now < horizon))
        ]
    if not kept:
        return records.filtered_batch(header, section, kept) if keep_empty else None
    # A batch whose tombstones (or marker of a transaction now empty) were kept gets its delete
    # horizon, once: they go in the first pass after it.
    set_horizon = horizon is None and (discardable and header.is_control or any(not r.has_value for r in kept))
    if len(kept) == len(stored) and not set_horizon:
        return batch
    return records.filtered_batch(header, section, kept,
                                  delete_horizon_ms=now + plan.config.delete_retention_ms if set_horizon else None)


def _is_last_of_producer(last: LastRecord | None, header: BatchHeader) -> bool:
    if last is None:
        return False
    if last.last_data_offset is not None:
        return header.last_offset == last.last_data_offset
    return header.is_control and header.producer_epoch == last.producer_epoch


class _Transactions:
    """The transactions around the batches the cleaner walks in offset order (Kafka's
    CleanedTransactionMetadata): which data batches belong to aborted transactions, and which
    markers may go. `index`, when set, is the cleaned segment whose transaction index takes the
    entries of the ABORT markers it keeps."""

    def __init__(self, aborted: Iterable[AbortedTxn]) -> None:
        # Aborted transactions not reached yet, by first offset.
        self._pending = collections.deque(sorted(aborted, key=lambda entry: entry.first_offset))
        # Producer id -> [its aborted transaction, whether a batch of it was seen].
        self._aborted: dict[int, list] = {}
        self._committed: set[int] = set()
        self.index: LogSegment | None = None

    def _reach(self, offset: int) -> None:
        pending = self._pending
        while pending and pending[0].first_offset <= offset:
            entry = pending.popleft()
            self._aborted.setdefault(entry.producer_id, [entry, False])

    def on_data(self, header: BatchHeader) -> bool:
        """Note a data batch; whether it belongs to an aborted transaction."""
        self._reach(header.last_offset)
        if not header.is_transactional:
            return False
        aborted = self._aborted.get(header.producer_id)
        if aborted is None:
            self._committed.add(header.producer_id)
            return False
        aborted[1] = True
        return True

    def on_marker(self, header: BatchHeader, batch: memoryview) -> bool:
        """Note a marker; whether it may go (no batch of its transaction is left before it). An
        ABORT marker kept keeps its entry in the cleaned segment's transaction index."""
        self._reach(header.last_offset)
        if not header.records_count:
            return True  # emptied by an earlier pass
        try:
            control_type = records.control_type(batch)
        except ProtocolError:
            return False  # not a transaction marker: kept as it is
        producer_id = header.producer_id
        if control_type == records.ControlType.ABORT:
            aborted = self._aborted.pop(producer_id, None)
            if aborted is not None and aborted[1]:
                if self.index is not None:
                    self.index.add_aborted_txn(aborted[0])
                return False
            return True
        if producer_id in self._committed:
            self._committed.discard(producer_id)
            return False
        return True


def _batches(directory: Path, segment: SegmentInfo) -> Iterator[tuple[BatchHeader, memoryview]]:
    """Each batch of a sealed segment, checked whole (CRC-32C included), read through a descriptor
    of the cleaner's own."""
    path = directory / segment_file_name(segment.base_offset, ".log")
    file = SegmentFile.open(path)
    end = segment.size_in_bytes
    buffer = memoryview(bytearray(_READ_CHUNK_BYTES))
    chunk_position = chunk_end = position = 0
    while position < end:
        try:
            if position + BATCH_HEADER_SIZE > chunk_end:
                chunk_position, chunk_end = position, position + _fill(file, buffer, position, end)
                # The file may be shorter than the log thinks: no header is read past its end.
                if chunk_end < min(position + BATCH_HEADER_SIZE, end):
                    raise CorruptBatchError(f"the file ends {chunk_end - position} bytes into a batch header")
            # The batch is checked against the segment's size; a batch running past the chunk is
            # read whole below.
            header = whole_batch_header(buffer, position - chunk_position, end - position)
            if position + header.size > chunk_end:
                if header.size > len(buffer):
                    buffer = memoryview(bytearray(header.size))
                chunk_position, chunk_end = position, position + _fill(file, buffer, position, end)
                if header.size > chunk_end - position:
                    raise CorruptBatchError(f"the file ends {header.size - (chunk_end - position)} bytes into the batch")
            verify_crc(buffer, header, position - chunk_position)
        except ProtocolError as error:
            raise CorruptLogError(path, position, f"the cleaner cannot read this batch: {error}") from error
        start = position - chunk_position
        yield header, buffer[start : start + header.size]
        position += header.size


def _fill(file: SegmentFile, buffer: memoryview, position: int, end: int) -> int:
    try:
        return os.preadv(file.fd, [buffer[: min(len(buffer), end - position)]], position)
    except OSError as error:
        raise LogStorageError(file.path, error) from error


# -- swapping cleaned segments in, and finishing a swap a crash interrupted ---------------------


def swap_in(directory: Path, group: CleanedGroup, retire: Callable[[], None]) -> None:
    """Replace the segments of `group` with its cleaned segment (renames only; see the module
    docstring), `retire()` taking the old segments out of the log (renaming their files .deleted)
    once the swap is decided. The log's next flush makes the directory entries durable."""
    base = group.base_offset
    try:
        for kind in _INDEX_KINDS:
            _cleaned(directory, base, kind).rename(_swap(directory, base, kind))
        _cleaned(directory, base, ".log").rename(_log_swap(directory, base, group.end_offset))
        retire()
        for kind in _INDEX_KINDS:
            _swap(directory, base, kind).rename(directory / segment_file_name(base, kind))
        _log_swap(directory, base, group.end_offset).rename(directory / segment_file_name(base, ".log"))
    except OSError as error:
        raise LogStorageError(directory, error) from error


def finish_interrupted_swaps(directory: Path, names: list[str]) -> bool:
    """Finish each swap that a crash interrupted after it was decided (a .log.<end>.swap file in
    `names`): remove the old segments it replaces, then give the cleaned files their names.
    Whether there was one."""
    swaps = [match for match in map(SWAP_FILE.fullmatch, names) if match]
    if not swaps:
        return False
    logs = sorted(int(name[:20]) for name in names if re.fullmatch(r"\d{20}\.log", name))
    for match in swaps:
        base, end = int(match[1]), int(match[2])
        for old in logs:
            if base < old < end:
                for kind in (".log", *_INDEX_KINDS):
                    (directory / segment_file_name(old, kind)).unlink(missing_ok=True)
        for kind in _INDEX_KINDS:
            swapped = _swap(directory, base, kind)
            if swapped.exists():  # else renamed already, over the old file
                swapped.replace(directory / segment_file_name(base, kind))
        _log_swap(directory, base, end).replace(directory / segment_file_name(base, ".log"))
    fsync_directory(directory)
    return True


def group_files(directory: Path, group: CleanedGroup) -> list[Path]:
    """The files of a group's cleaned segment, not swapped in."""
    return [_cleaned(directory, group.base_offset, kind) for kind in (".log", *_INDEX_KINDS)]


def _cleaned(directory: Path, base: int, kind: str) -> Path:
    return directory / (segment_file_name(base, kind) + CLEANED_SUFFIX)


def _swap(directory: Path, base: int, kind: str) -> Path:
    return directory / (segment_file_name(base, kind) + _SWAP_SUFFIX)


def _log_swap(directory: Path, base: int, end: int) -> Path:
    return directory / f"{segment_file_name(base, '.log')}.{end:020d}{_SWAP_SUFFIX}"


def run_pass_between_pipes() -> None:
    """Run the pass pickled on stdin, writing its result pickled to stdout, or the reason it
    failed to stderr (exit status 1): the broker runs passes so, in a process of its own, where
    their CPU work neither holds its event loop nor contends for its interpreter lock."""
    _die_with_parent()
    os.nice(10)  # background work: the broker's requests come first
    plan = pickle.load(sys.stdin.buffer)
    try:
        result = clean(plan)
    except (LogStorageError, CorruptLogError) as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
    result.peak_memory_bytes = _peak_resident_bytes()
    pickle.dump(result, sys.stdout.buffer)


def _peak_resident_bytes() -> int:
    """This process's own peak resident memory: Linux's VmHWM. Not getrusage's ru_maxrss, which a
    process started by fork and exec inherits from its parent (the broker's size at the fork)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: the best there is


def _die_with_parent() -> None:
    """Be killed with the broker (Linux's PR_SET_PDEATHSIG): a pass outliving a killed broker would
    go on writing cleaned files beside the logs the restarted broker opens."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return  # not Linux: the broker kills passes it stops waiting for
    if os.getppid() != parent:  # the broker died before the request took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1


if __name__ == "__main__":
    # Through the package's module, not this __main__ copy, whose classes would not unpickle.
    from log.cleaner import run_pass_between_pipes as run

    run()
