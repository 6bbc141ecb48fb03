"""Open segment files and the read-only byte ranges of them that reads hand out."""

from __future__ import annotations

import os
from pathlib import Path

from log.errors import LogStorageError


class SegmentFile:
    """An open .log file whose descriptor closes when nothing refers to it any more.

    A FileRecords slice or a running fsync holds a reference, so the descriptor stays valid while
    they need it even if the segment meanwhile rolled, was deleted by retention or the log closed;
    it is never closed under them and so never reused for another file."""

    __slots__ = ("path", "fd", "__weakref__")

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self.fd = fd

    @classmethod
    def open(cls, path: Path, *, create: bool = False) -> SegmentFile:
        flags = os.O_RDWR | os.O_CREAT if create else os.O_RDWR
        try:
            return cls(path, os.open(path, flags, 0o644))
        except OSError as error:
            raise LogStorageError(path, error) from error

    def __del__(self) -> None:
        os.close(self.fd)

    def pread(self, size: int, position: int) -> bytes:
        """Exactly `size` bytes from `position`, or fewer where the file ends."""
        try:
            return os.pread(self.fd, size, position)
        except OSError as error:
            raise LogStorageError(self.path, error) from error


class FileRecords:
    """A byte range of one segment file: whole record batches as stored (the last may be cut short
    by the read's byte limit, as Kafka does).

    Use it as bytes (`bytes(records)`, `len(records)`) or send it without copying:
    `os.sendfile(socket_fd, records.fileno(), records.position, len(records))`."""

    __slots__ = ("_file", "position", "_size")

    def __init__(self, file: SegmentFile, position: int, size: int) -> None:
        self._file = file
        self.position = position
        self._size = size

    @property
    def path(self) -> Path:
        """The segment file's path when it was opened."""
        return self._file.path

    def fileno(self) -> int:
        """The descriptor of the segment file; valid as long as this object lives."""
        return self._file.fd

    def __len__(self) -> int:
        return self._size

    def __bytes__(self) -> bytes:
        data = self._file.pread(self._size, self.position)
        if len(data) != self._size:
            raise LogStorageError(self._file.path, f"file ended {self._size - len(data)} bytes early")
        return data

    def __repr__(self) -> str:
        return f"FileRecords({self._file.path.name}, position={self.position}, size={self._size})"
