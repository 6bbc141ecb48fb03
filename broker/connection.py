"""One client connection: size-prefixed frames in, responses out in request order.

Requests on a connection are handled one at a time, in the order they arrived, as Kafka does:
clients may pipeline, the reader buffers ahead, and each response goes out before the next
request is looked at, so responses keep request order without any reordering machinery.

The socket is read and written with plain non-blocking system calls on its descriptor, waiting
through trio only when the kernel has nothing to give or no room to take: trio's socket methods
pass through the scheduler on every call, which cost a one-record request about a tenth of its
time. A connection whose client keeps it busy still lets other tasks run: a request that needed
no wait yields to the scheduler once.

No client can make the broker hold much more than it sent: a large frame's buffer starts at no
more than 1 MiB and grows with the bytes that arrive, and frames larger than the read-ahead first
claim their size from the broker-wide RequestBudget (Kafka's queued.max.request.bytes), waiting
while it has no room. Smaller frames come out of the connection's own read-ahead buffer, whose
memory ConnectionLimits bound, and so never wait behind large ones.
"""

from __future__ import annotations

import collections
import errno
import os
import resource
import struct

import trio

_SIZE = struct.Struct(">i")
_READ_AHEAD = 16 * 1024
# A frame larger than this (one that would not fit in the read-ahead with its size prefix) is
# received into its own buffer and claims its size from the RequestBudget.
_LARGE_FRAME = _READ_AHEAD - _SIZE.size
# A large frame's buffer starts at most this big and doubles as bytes arrive. Record batches of
# 1 MB (librdkafka's and Kafka's default batch limit) fit at once; the budget bounds how many
# frames hold a buffer at a time.
_FIRST_BUFFER = 1024 * 1024
# Kafka's "unlimited" for max.connections and max.connections.per.ip.
UNLIMITED_CONNECTIONS = 2**31 - 1


class FrameTooLarge(Exception):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame of {size} bytes is over the limit of {limit} bytes")


class ConnectionClosed(Exception):
    """The peer closed the connection, possibly in the middle of a frame."""


class ReadInterrupted(Exception):
    """The broker stopped waiting for this connection's next request (it was idle too long, or the
    broker is shutting down)."""


def default_max_connections() -> int:
    """max.connections when none is given: half the open-file limit, so that a flood of
    connections leaves the other half for the log's segment files (Kafka's default is unlimited,
    and a broker out of descriptors cannot roll a segment or create a partition)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return UNLIMITED_CONNECTIONS
    return max(soft // 2, 1)


class ConnectionLimits:
    """Kafka's max.connections and max.connections.per.ip, counted from accept to close."""

    def __init__(self, total: int, per_ip: int) -> None:
        self.total = total
        self.per_ip = per_ip
        self._open = 0
        self._by_ip: collections.Counter[str] = collections.Counter()

    def admit(self, ip: str) -> str | None:
        """Count a new connection from `ip` in, or say which limit it is over (it is then not counted)."""
        if self._open >= self.total:
            return f"max.connections ({self.total}) reached"
        if self._by_ip[ip] >= self.per_ip:
            return f"max.connections.per.ip ({self.per_ip}) reached for {ip}"
        self._open += 1
        self._by_ip[ip] += 1
        return None

    def closed(self, ip: str) -> None:
        self._open -= 1
        self._by_ip[ip] -= 1
        if not self._by_ip[ip]:
            del self._by_ip[ip]


class RequestBudget:
    """Kafka's queued.max.request.bytes: the bytes that request frames larger than the read-ahead
    claim, broker-wide, from the moment their size is read until their response has been sent.

    A frame claims its whole size at once (as Kafka's memory pool allocates it), so frames never
    hold part of the budget while waiting for the rest, and claims are granted in arrival order,
    so a large frame is not passed over forever by smaller ones."""

    def __init__(self, limit: int) -> None:
        self.available = limit
        self._waiting: collections.deque[tuple[int, trio.Event]] = collections.deque()

    def try_claim(self, size: int) -> bool:
        if self._waiting or size > self.available:
            return False
        self.available -= size
        return True

    async def claim(self, size: int) -> None:
        """Wait until `size` bytes are free and take them."""
        if self.try_claim(size):
            return
        waiter = (size, trio.Event())
        self._waiting.append(waiter)
        try:
            await waiter[1].wait()
        except BaseException:
            if waiter[1].is_set():
                self.release(size)  # granted just as the wait was cancelled
            else:
                self._waiting.remove(waiter)
                self._grant()  # the claims queued behind this one may fit now
            raise

    def release(self, size: int) -> None:
        self.available += size
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self._waiting[0][0] <= self.available:
            size, granted = self._waiting.popleft()
            self.available -= size
            granted.set()


class Connection:
    """Frames over a trio socket; also writes responses, with os.sendfile for file slices."""

    def __init__(self, sock: trio.socket.SocketType, max_frame_bytes: int, budget: RequestBudget) -> None:
        self._fd = sock.fileno()
        self.max_frame_bytes = max_frame_bytes
        self._budget = budget
        self._buffer = bytearray(_READ_AHEAD)
        self._start = 0
        self._end = 0
        # Whether the request being read had to wait for the socket (and so let other tasks run).
        self._waited = False
        # trio.current_time() when the connection started waiting for bytes from the client; None
        # while it has some to work on.
        self.idle_since: float | None = None
        # trio.current_time() when the broker started waiting for the rest of a frame the client
        # has begun (or for budget for it); None between frames. The request read timeout counts
        # from here.
        self.frame_since: float | None = None
        # Bytes of the budget the frame being read or answered holds.
        self._claimed = 0
        # Set while waiting for budget, so that interrupt_read can stop that wait too.
        self._claim_scope: trio.CancelScope | None = None

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
        if self.frame_since is None and self._end > self._start:
            self.frame_since = self.idle_since
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
        if self._claim_scope is not None:
            self._claim_scope.cancel()

    def release_request(self) -> None:
        """The request read last has been answered (or dropped): give its bytes back to the budget."""
        if self._claimed:
            self._budget.release(self._claimed)
            self._claimed = 0

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
        self.frame_since = None
        if not self._waited:
            await trio.lowlevel.checkpoint()
        return frame

    async def _read_frame(self) -> bytes | bytearray:
        while self._end - self._start < 4:
            await self._fill()
        (size,) = _SIZE.unpack_from(self._buffer, self._start)
        if size < 0 or size > self.max_frame_bytes:
            raise FrameTooLarge(size, self.max_frame_bytes)
        if size > _LARGE_FRAME:
            self._start += _SIZE.size
            return await self._read_large_frame(size)
        # The size prefix stays in the buffer until the frame is whole, so a wait for the rest
        # counts as a frame begun (frame_since), however little of it has arrived.
        while self._end - self._start < _SIZE.size + size:
            await self._fill()
        start = self._start + _SIZE.size
        frame = bytes(memoryview(self._buffer)[start:start + size])  # one copy, not two
        self._start = start + size
        return frame

    async def _read_large_frame(self, size: int) -> bytearray:
        """Claim `size` bytes of the budget, take what the read-ahead holds, then receive the rest
        in place into a buffer that doubles as it fills: a frame that claims 100 MiB and stops
        costs at most _FIRST_BUFFER or twice what was sent."""
        self.frame_since = trio.current_time()
        await self._claim(size)
        frame = bytearray(min(size, _FIRST_BUFFER))
        filled = self._end - self._start
        frame[:filled] = memoryview(self._buffer)[self._start:self._end]
        self._start = self._end = 0
        while filled < size:
            if filled == len(frame):
                frame += bytes(min(size, 2 * filled) - filled)
            filled += await self._receive_into(memoryview(frame)[filled:])
        return frame

    async def _claim(self, size: int) -> None:
        if not self._budget.try_claim(size):
            with trio.CancelScope() as scope:
                self._claim_scope = scope
                try:
                    await self._budget.claim(size)
                finally:
                    self._claim_scope = None
            if scope.cancelled_caught:
                raise ReadInterrupted()
        self._claimed = size

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
