"""A segment's sparse offset index and time index, held in their on-disk layout (big endian entries).

The active segment keeps its entries in a bytearray and writes the file when it is sealed or the
log is closed; sealed segments map their files read-only, so loading one costs nothing
proportional to its size."""

from __future__ import annotations

import bisect
import mmap
import os
import struct
from pathlib import Path
from typing import ClassVar, Self, TypeVar

from log.errors import LogStorageError


class _Index:
    ENTRY: ClassVar[struct.Struct]
    # Which field of an entry holds the offset (stored relative to the segment's base offset).
    OFFSET_FIELD: ClassVar[int]

    def __init__(self, path: Path, base_offset: int, data: bytes | bytearray | mmap.mmap, max_entries: int) -> None:
        self.path = path
        self.base_offset = base_offset
        self._data = data
        self._max_bytes = max_entries * self.ENTRY.size
        # An attribute, not a property: the active segment checks it on every append.
        self.is_full = len(data) >= self._max_bytes

    @classmethod
    def empty(cls, path: Path, base_offset: int, max_index_bytes: int) -> Self:
        return cls(path, base_offset, bytearray(), max_index_bytes // cls.ENTRY.size)

    @classmethod
    def load(cls, path: Path, base_offset: int, max_index_bytes: int, *, writable: bool) -> Self | None:
        """The index stored in `path`, or None when the file is missing or not made of whole entries.

        A writable index is copied into memory; a read-only one is memory-mapped."""
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                size = os.fstat(fd).st_size
                if writable:
                    data: bytes | bytearray | mmap.mmap = bytearray(os.read(fd, size))
                else:
                    data = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if size else b""
            finally:
                os.close(fd)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise LogStorageError(path, error) from error
        if len(data) % cls.ENTRY.size:
            return None
        return cls(path, base_offset, data, max_index_bytes // cls.ENTRY.size)

    def __len__(self) -> int:
        return len(self._data) // self.ENTRY.size

    def entry(self, number: int) -> tuple[int, int]:
        """Entry `number` with its offset made absolute."""
        fields = list(self.ENTRY.unpack_from(self._data, number * self.ENTRY.size))
        fields[self.OFFSET_FIELD] += self.base_offset
        return fields[0], fields[1]

    @property
    def last_entry(self) -> tuple[int, int] | None:
        return self.entry(len(self) - 1) if len(self) else None

    def _bisect(self, value: int, field: int, *, include_equal: bool) -> int:
        """How many entries have `field` below `value` (or equal to it, with include_equal)."""
        unpack_from, size, data = self.ENTRY.unpack_from, self.ENTRY.size, self._data
        find = bisect.bisect_right if include_equal else bisect.bisect_left
        return find(range(len(self)), value, key=lambda number: unpack_from(data, number * size)[field])

    def write(self) -> None:
        """Store the entries in the index file, replacing what it held."""
        try:
            with open(self.path, "wb") as file:
                file.write(self._data)
        except OSError as error:
            raise LogStorageError(self.path, error) from error


class OffsetIndex(_Index):
    """Entries (offset relative to the segment's base offset, position of that batch in the .log file).

    One entry is added every index_interval_bytes of appended data, so a lookup lands within that
    many bytes of any batch."""

    ENTRY = struct.Struct(">II")
    OFFSET_FIELD = 0

    def append(self, offset: int, position: int) -> None:
        self._data += self.ENTRY.pack(offset - self.base_offset, position)
        self.is_full = len(self._data) >= self._max_bytes

    def lookup(self, offset: int) -> tuple[int, int]:
        """(offset, position) of the last indexed batch starting at or before `offset`."""
        count = self._bisect(offset - self.base_offset, 0, include_equal=True)
        return self.entry(count - 1) if count else (self.base_offset, 0)

    def first_offset_at_or_after(self, position: int) -> int | None:
        """The offset of the first indexed batch starting at or after `position`, if any."""
        count = self._bisect(position, 1, include_equal=False)
        return self.entry(count)[0] if count < len(self) else None

    def is_consistent(self, log_size: int, offset_span: int) -> bool:
        """Whether the last entry points inside the segment (Kafka's cheap sanity check of an index)."""
        last = self.last_entry
        return last is None or (last[1] < log_size and last[0] - self.base_offset < offset_span)


class TimeIndex(_Index):
    """Entries (largest batch max timestamp so far, relative offset of the batch that holds it).

    An entry is added only when the largest timestamp grows, so entries rise in both fields and
    every batch up to an entry's offset has a max timestamp no larger than the entry's."""

    ENTRY = struct.Struct(">qI")
    OFFSET_FIELD = 1

    def __init__(self, path: Path, base_offset: int, data: bytes | bytearray | mmap.mmap, max_entries: int) -> None:
        super().__init__(path, base_offset, data, max_entries)
        last = self.last_entry
        # Below any 8-byte timestamp while there is no entry.
        self._last_timestamp = -(1 << 64) if last is None else last[0]

    def maybe_append(self, timestamp: int, offset: int) -> None:
        if timestamp > self._last_timestamp:
            self._data += self.ENTRY.pack(timestamp, offset - self.base_offset)
            self.is_full = len(self._data) >= self._max_bytes
            self._last_timestamp = timestamp

    def lookup(self, timestamp: int) -> int:
        """An offset from which scanning forward finds the first batch with max timestamp >= `timestamp`."""
        count = self._bisect(timestamp, 0, include_equal=False)
        return self.entry(count - 1)[1] if count else self.base_offset

    def is_consistent(self, log_size: int, offset_span: int) -> bool:
        """Whether the last entry points inside the segment."""
        last = self.last_entry
        return last is None or last[1] - self.base_offset < offset_span


IndexT = TypeVar("IndexT", OffsetIndex, TimeIndex)
