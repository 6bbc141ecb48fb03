"""What this machine can do at all, as ceilings for a broker's throughput: a raw loopback TCP
stream between two processes, and a raw sequential file write (to the page cache, no fsync:
ComLog's default flush policy leaves write-back to the OS too)."""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from pathlib import Path

CHUNK_BYTES = 1 << 20
_CHUNK = bytes(range(256)) * (CHUNK_BYTES // 256)
_TIMEOUT_SECONDS = 60


def _send(port: int, total: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=_TIMEOUT_SECONDS) as connection:
        for _ in range(total // CHUNK_BYTES):
            connection.sendall(_CHUNK)


def loopback_tcp_seconds(total: int) -> float:
    """Seconds to stream `total` bytes (a multiple of 1 MiB) over loopback TCP from another
    process, timed by the receiver from the accepted connection to the last byte."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(_TIMEOUT_SECONDS)
        # A fresh interpreter, not a fork of this one (which may hold client library threads).
        sender = multiprocessing.get_context("spawn").Process(target=_send, args=(listener.getsockname()[1], total))
        sender.start()
        try:
            connection, _ = listener.accept()
            with connection:
                connection.settimeout(_TIMEOUT_SECONDS)
                buffer = memoryview(bytearray(CHUNK_BYTES))
                received = 0
                started = time.perf_counter()
                while received < total:
                    count = connection.recv_into(buffer)
                    if not count:
                        raise ConnectionError(f"the sender stopped after {received} of {total} bytes")
                    received += count
                return time.perf_counter() - started
        finally:
            sender.join(_TIMEOUT_SECONDS)
            if sender.is_alive():
                sender.kill()


def file_write_seconds(directory: Path, total: int) -> float:
    """Seconds to write `total` bytes (a multiple of 1 MiB) to a new file in 1 MiB writes; the file
    is removed afterwards."""
    path = directory / "ceiling-write"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        started = time.perf_counter()
        for _ in range(total // CHUNK_BYTES):
            os.write(fd, _CHUNK)
        return time.perf_counter() - started
    finally:
        os.close(fd)
        path.unlink()
