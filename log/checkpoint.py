"""Small files holding one offset each (log start offset, recovery point), replaced atomically."""

from __future__ import annotations

import os
from pathlib import Path

from log.errors import CorruptLogError, LogStorageError

_VERSION = "0"


def fsync_directory(directory: Path) -> None:
    """Make renames, creations and deletions in `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checkpoint_temporary(name: str) -> str:
    """The file a checkpoint is written to before it replaces `name`."""
    return name + ".tmp"


def write_checkpoint(path: Path, offset: int) -> None:
    """Durably replace `path` with `offset`: a crash leaves either the old or the new value."""
    temporary = path.with_name(checkpoint_temporary(path.name))
    try:
        with open(temporary, "w", encoding="ascii") as file:
            file.write(f"{_VERSION}\n{offset}\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
        fsync_directory(path.parent)
    except OSError as error:
        raise LogStorageError(path, error) from error


def read_checkpoint(path: Path) -> int | None:
    """The offset stored in `path`, or None when there is no such file."""
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise CorruptLogError(path, 0, f"unreadable checkpoint: {error}") from error
    lines = text.split("\n")
    if len(lines) != 3 or lines[0] != _VERSION or lines[2] or not lines[1].isdigit():
        raise CorruptLogError(path, 0, f"not a version {_VERSION} checkpoint: {text[:40]!r}")
    return int(lines[1])
