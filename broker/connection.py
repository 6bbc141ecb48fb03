"""One client connection: size-prefixed frames in, responses out in request order.

Requests on a connection are handled one at a time, in the order they arrived, as Kafka does:
clients may pipeline, the reader buffers ahead, and each response goes out before the next
request is looked at, so responses keep request order without any reordering machinery.

The socket is read and written with plain non-blocking system calls on its descriptor, waiting
through trio only when the kernel has nothing to give or no room to take: trio's socket methods
pass through the scheduler on every call, which cost a one-record request about a tenth of its
time. A connection whose client keeps it busy still lets other tasks run: a request that needed
no wait yields to the scheduler once.
"""

from __future__ import annotations

import errno
import os
import struct

import trio

_SIZE = struct.Struct(">i")
_READ_AHEAD = 16 * 1024
# A frame this large or larger is received straight into its own buffer instead of the read-ahead.
_DIRECT_READ = 16 * 1024


class FrameTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes is over the limit of {limit} bytes")


class ConnectionClosed(Exception):
    """The peer closed the connection, possibly in the middle of a frame."""


class ReadInterrupted(Exception):
    """The broker stopped waiting for this connection's next request (it was idle too long, or the
    broker is shutting down)."""


class Connection:
    """Frames over a trio socket; also writes responses, with os.sendfile for file slices."""

    def __init__(self, sock: trio.socket.SocketType, max_frame_bytes: int) -> None:
        self._fd = sock.fileno()
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray(_READ_AHEAD)
        self._start = 0
        self._end = 0
        # Whether the request being read had to wait for the socket (and so let other tasks run).
        self._waited = False
        # trio.current_time() when the connection started waiting for bytes from the client; None
        # while it has some to work on.
        self.idle_since: float | None = None

    async def _receive_into(self, view: memoryview) -> int:
        """Receive into `view`, waiting until the socket has data; raises ConnectionClosed at EOF."""
        while True:
            try:
                received = os.readv(self._fd, [view])
            except BlockingIOError:
                await self._wait_readable()
                continue
            if not received:
                raise ConnectionClosed()
            return received

    async def _wait_readable(self) -> None:
        self._waited = True
        self.idle_since = trio.current_time()
        try:
            await trio.lowlevel.wait_readable(self._fd)
        except trio.ClosedResourceError:
            raise ReadInterrupted() from None
        finally:
            self.idle_since = None

    def interrupt_read(self) -> None:
        """Make a read that is waiting for the client raise ReadInterrupted; the caller then closes
        the connection. Without a cancel scope around every read, as those cost a small request a
        tenth of its time."""
        if self.idle_since is not None:
            trio.lowlevel.notify_closing(self._fd)

    async def _fill(self) -> None:
        """Read more bytes into the read-ahead buffer, compacting it first."""
        if self._start:
            pending = self._end - self._start
            self._buffer[:pending] = self._buffer[self._start:self._end]
            self._start, self._end = 0, pending
        self._end += await self._receive_into(memoryview(self._buffer)[self._end:])

    async def read_frame(self) -> bytes | bytearray:
        """The next request frame, without its size prefix."""
        self._waited = False
        frame = await self._read_frame()
        if not self._waited:
            await trio.lowlevel.checkpoint()
        return frame

    async def _read_frame(self) -> bytes | bytearray:
        while self._end - self._start < 4:
            await self._fill()
        (size,) = _SIZE.unpack_from(self._buffer, self._start)
        if size < 0 or size > self.max_frame_bytes:
            raise FrameTooLarge(size, self.max_frame_bytes)
        self._start += 4
        buffered = self._end - self._start
        if size <= buffered or size < _DIRECT_READ:
            while self._end - self._start < size:
                await self._fill()
            frame = bytes(memoryview(self._buffer)[self._start:self._start + size])  # one copy, not two
            self._start += size
            return frame
        # A large frame: take what is buffered, then receive the rest in place (one copy, no growth).
        frame = bytearray(size)
        frame[:buffered] = self._buffer[self._start:self._end]
        self._start = self._end = 0
        view = memoryview(frame)
        filled = buffered
        while filled < size:
            filled += await self._receive_into(view[filled:])
        return frame

    async def send(self, chunks: list) -> None:
        """Write response chunks in order: bytes-like ones with writev, file slices with sendfile."""
        pending: list = []
        for chunk in chunks:
            if isinstance(chunk, (bytes, bytearray, memoryview)):
                if len(chunk):
                    pending.append(chunk)
                continue
            await self._send_buffers(pending)
            pending = []
            await self._sendfile(chunk)
        await self._send_buffers(pending)

    async def _send_buffers(self, buffers: list) -> None:
        views = [memoryview(b).cast("B") for b in buffers]
        while views:
            try:
                sent = os.writev(self._fd, views)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self._fd)
                continue
            while views and sent >= len(views[0]):
                sent -= len(views[0])
                views.pop(0)
            if sent:
                views[0] = views[0][sent:]

    async def _sendfile(self, file_slice) -> None:
        """Send a log slice without copying it through Python (zero copy, as Kafka serves fetches)."""
        fd, position, remaining = file_slice.fileno(), file_slice.position, len(file_slice)
        while remaining:
            try:
                sent = os.sendfile(self._fd, fd, position, remaining)
            except BlockingIOError:
                await trio.lowlevel.wait_writable(self._fd)
                continue
            except OSError as exc:
                if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    # This socket or file cannot sendfile: fall back to a plain copy.
                    await self._send_buffers([os.pread(fd, remaining, position)])
                    return
                raise
            if sent == 0:
                raise ConnectionClosed()
            position += sent
            remaining -= sent
