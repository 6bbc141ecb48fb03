"""A segment's transaction index: the aborted transactions whose ABORT marker lies in the segment,
in Kafka's .txnindex layout (34-byte entries: int16 version 0, then producer id, first offset,
last offset and last stable offset as int64, big endian), in marker order.

Read committed fetches ask it which aborted transactions overlap what they return, so that
clients drop those records. The entries live in a list; the file is replaced whole, atomically,
by the flush that first needs it on disk (a segment holds few aborted transactions). A crash
thus leaves a file complete as of some flush, or none. A missing file makes the broker rebuild the
index; a stale one would pass for current, so the log keeps the segments that may have one at or
after its recovery point, where a crash recovers them (Log._open, Log._sync)."""

from __future__ import annotations

import bisect
import os
import struct
from operator import attrgetter
from pathlib import Path
from typing import NamedTuple

from log.errors import CorruptLogError, LogStorageError

_ENTRY = struct.Struct(">hqqqq")
_VERSION = 0
# The file a transaction index is written to before it replaces the index file.
TEMPORARY_SUFFIX = ".tmp"
_last_offset = attrgetter("last_offset")


class AbortedTxn(NamedTuple):
    producer_id: int
    # The transaction's first offset in this partition, and the offset of its ABORT marker.
    first_offset: int
    last_offset: int
    # The partition's last stable offset once the transaction was aborted.
    last_stable_offset: int


class TransactionIndex:
    """The entries of one segment's .txnindex, ordered by last offset (the marker's)."""

    __slots__ = ("path", "_entries", "dirty")

    def __init__(self, path: Path, entries: list[AbortedTxn], *, dirty: bool) -> None:
        self.path = path
        self._entries = entries
        # Whether the file lacks some of the entries (or does not exist yet).
        self.dirty = dirty

    @classmethod
    def empty(cls, path: Path) -> TransactionIndex:
        return cls(path, [], dirty=True)

    @classmethod
    def load(cls, path: Path, base_offset: int, next_offset: int) -> TransactionIndex | None:
        """The index stored in `path`, None when there is no such file. Raises CorruptLogError
        when it is not whole entries of version 0 whose markers lie in the segment (from
        `base_offset` to before `next_offset`) in rising order."""
        try:
            # Most segments have no aborted transaction: a stat tells, for each at every open.
            size = os.stat(path).st_size
            data = b""
            if size:
                fd = os.open(path, os.O_RDONLY)
                try:
                    data = os.read(fd, size)
                finally:
                    os.close(fd)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise LogStorageError(path, error) from error
        if len(data) % _ENTRY.size:
            raise CorruptLogError(path, len(data) - len(data) % _ENTRY.size, f"{len(data)} bytes are not whole {_ENTRY.size}-byte entries")
        entries = []
        previous = base_offset - 1
        for number, (version, producer_id, first_offset, last_offset, last_stable_offset) in enumerate(_ENTRY.iter_unpack(data)):
            if version != _VERSION or not previous < last_offset < next_offset or first_offset > last_offset:
                raise CorruptLogError(
                    path, number * _ENTRY.size,
                    f"entry (version {version}, offsets {first_offset} to {last_offset}) does not follow on "
                    f"in a segment of offsets {base_offset} to {next_offset - 1}",
                )
            entries.append(AbortedTxn(producer_id, first_offset, last_offset, last_stable_offset))
            previous = last_offset
        return cls(path, entries, dirty=False)

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entry: AbortedTxn) -> bool:
        """Add `entry` in its place; False when an entry with its last offset is there already."""
        entries = self._entries
        if not entries or entries[-1].last_offset < entry.last_offset:
            entries.append(entry)
        else:
            number = bisect.bisect_left(entries, entry.last_offset, key=_last_offset)
            if entries[number].last_offset == entry.last_offset:
                return False
            entries.insert(number, entry)
        self.dirty = True
        return True

    def collect(self, start_offset: int, upper_bound_offset: int, found: list[AbortedTxn]) -> bool:
        """Add to `found` the entries with last offset >= start_offset and first offset <
        upper_bound_offset. True when no later segment can hold more: an entry whose last stable
        offset reached the upper bound was aborted when every transaction still open had started
        at or above it (Kafka's collectAbortedTxns)."""
        entries = self._entries
        for number in range(bisect.bisect_left(entries, start_offset, key=_last_offset), len(entries)):
            entry = entries[number]
            if entry.first_offset < upper_bound_offset:
                found.append(entry)
            if entry.last_stable_offset >= upper_bound_offset:
                return True
        return False

    def write(self) -> None:
        """Durably replace the file with the entries: a crash leaves the old file or the new one
        (the directory entry is durable once the caller syncs the directory). Safe in a flushing
        thread while the log's thread adds entries: one added meanwhile leaves the index dirty."""
        self.dirty = False
        data = b"".join([_ENTRY.pack(_VERSION, *entry) for entry in list(self._entries)])
        temporary = self.path.with_name(self.path.name + TEMPORARY_SUFFIX)
        try:
            with open(temporary, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except OSError as error:
            self.dirty = True
            raise LogStorageError(self.path, error) from error
