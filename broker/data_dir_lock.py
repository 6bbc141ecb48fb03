"""One broker per data directory: an exclusive lock on `<data dir>/.lock`, as Kafka keeps one.

The lock is an advisory `flock` on the open file, so the kernel drops it when the process dies
(kill -9 included): a stale `.lock` file never keeps the next broker out.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = ".lock"


class DataDirInUse(Exception):
    def __init__(self, data_dir: Path) -> None:
        super().__init__(f"the data directory {data_dir} is in use by another broker process "
                         f"(it holds the lock on {data_dir / LOCK_FILE})")


class DataDirLock:
    """Held from `acquire()` until `release()`; taking it touches no file but the lock file."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._fd: int | None = None

    def acquire(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirInUse(self.data_dir) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
