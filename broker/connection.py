"""One client connection: size-prefixed frames in, responses out in request order.

Requests on a connection are handled one at a time, in the order they arrived, as Kafka does:
clients may pipeline, the reader buffers ahead, and each response goes out before the next
request is looked at, so responses keep request order without any reordering machinery.

A Connection reads and writes through a Transport, the one interface between it and the bytes:
SocketTransport for plaintext, and beside it whatever else carries the bytes (TLS) without the
connection or the handlers changing. Frames are cut by protocol.framing's FrameBuffer, received
into in place.

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
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

import trio

from protocol.framing import FrameBuffer

# Kafka's "unlimited" for max.connections and max.connections.per.ip.
UNLIMITED_CONNECTIONS = 2**31 - 1


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


class ConnectionClosed(Exception):
    """The peer closed the connection, possibly in the middle of a frame."""


class ReadInterrupted(Exception):
    """interrupt_read came as a wait for the client ended, too late to cancel that wait."""


class FileSlice(Protocol):
    """A byte range of an open file, sent without copying it through Python (log.FileRecords)."""

    position: int

    def fileno(self) -> int: ...

    def __len__(self) -> int: ...


Chunk = bytes | bytearray | memoryview | FileSlice


class Transport(Protocol):
    """The bytes of one connection, as a Connection receives and sends them.

    Receiving never waits by itself: try_receive_into takes what has arrived, and wait_readable
    waits for more. So a request whose bytes are there costs no pass through the scheduler, and
    the connection knows when it waits (its idle and read timeouts count waits, and only a wait is
    interrupted). Every wait is a trio checkpoint, and cancelling it is how a read is interrupted."""

    def try_receive_into(self, buffer: memoryview) -> int | None:
        """Receive into the start of `buffer` what has arrived, without waiting: how many bytes
        (0 once the peer has closed), or None while nothing has arrived."""

    async def wait_readable(self) -> None:
        """Return once try_receive_into has something to give (or the peer has closed)."""

    async def send_all(self, chunks: Iterable[Chunk]) -> None:
        """Send the chunks in order, waiting for room as needed."""

    async def aclose(self) -> None:
        """Close the connection."""


class SocketTransport:
    """Plaintext TCP: non-blocking system calls on the socket's descriptor, waiting through trio
    only when the kernel has nothing to give or no room to take (trio's socket methods pass
    through the scheduler on every call, which cost a one-record request about a tenth of its
    time). File slices go out with os.sendfile, zero copy, as Kafka serves fetches."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._fd = stream.socket.fileno()

    def try_receive_into(self, buffer: memoryview) -> int | None:
        try:
            return os.readv(self._fd, [buffer])
        except BlockingIOError:
            return None

    async def wait_readable(self) -> None:
        await trio.lowlevel.wait_readable(self._fd)

    async def send_all(self, chunks: Iterable[Chunk]) -> None:
        """Bytes-like chunks with writev, file slices with sendfile."""
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

    async def aclose(self) -> None:
        await self._stream.aclose()

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

    async def _sendfile(self, file_slice: FileSlice) -> None:
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


class Connection:
    """A client's requests answered in order over one Transport, until the client closes the
    connection or the broker interrupts it."""

    def __init__(self, transport: Transport, max_frame_bytes: int, budget: RequestBudget) -> None:
        self.transport = transport
        self._frames = FrameBuffer(max_frame_bytes)
        self._budget = budget
        # Whether the request being read had to wait (and so let other tasks run).
        self._waited = False
        # trio.current_time() when the connection started waiting for bytes from the client; None
        # while it has some to work on.
        self.idle_since: float | None = None
        # trio.current_time() when the broker started waiting for the rest of a frame the client
        # has begun (or for budget for it); None between frames. The request read timeout counts
        # from here.
        self.frame_since: float | None = None
        # Bytes of the budget the frame being read or answered holds, and whether it waits for them.
        self._claimed = 0
        self._claiming = False
        # interrupt_read cancels a wait through this scope, entered once for the connection's
        # life: a scope entered per read costs more than the rest of reading a small request.
        self._scope = trio.CancelScope()
        self._interrupted = False

    async def serve(self, answer: Callable[[bytes | bytearray], Awaitable[list[Chunk] | None]]) -> None:
        """Read each request frame and send answer(frame)'s response frame (None: no response)
        before reading the next, until the client closes or interrupt_read. Raises what reading
        raises (FrameTooLarge, OSError) and what `answer` raises."""
        with self._scope:
            try:
                while not self._interrupted:
                    frame = await self._read_frame()
                    response = await answer(frame)
                    if response is not None:
                        await self.transport.send_all(response)
                    # Answered: its bytes go back to the budget, and are not kept while the next
                    # request is awaited.
                    frame = response = None
                    self._release_request()
            except (ConnectionClosed, ReadInterrupted):
                pass
            finally:
                self._release_request()

    @property
    def max_frame_bytes(self) -> int:
        return self._frames.max_frame_bytes

    @max_frame_bytes.setter
    def max_frame_bytes(self, limit: int) -> None:
        """The largest frame read from now on (a SASL connection's is small until it authenticates)."""
        self._frames.max_frame_bytes = limit

    def interrupt_read(self) -> None:
        """Read no more requests: a wait for one (for the client's bytes or for budget) is
        cancelled now, and a request being handled is answered first."""
        self._interrupted = True
        if self.idle_since is not None or self._claiming:
            self._scope.cancel()

    def _release_request(self) -> None:
        if self._claimed:
            self._budget.release(self._claimed)
            self._claimed = 0

    async def _read_frame(self) -> bytes | bytearray:
        self._waited = False
        frames = self._frames
        while (frame := frames.next_frame()) is None:
            if frames.large_frame_size and not self._claimed:
                await self._claim(frames.large_frame_size)
            await self._receive()
        self.frame_since = None
        if not self._waited:
            # A connection whose client keeps it busy still lets other tasks run.
            await trio.lowlevel.checkpoint()
        return frame

    async def _receive(self) -> None:
        """Receive more bytes into the frame buffer, waiting for the client as needed."""
        buffer = self._frames.get_buffer()
        while (received := self.transport.try_receive_into(buffer)) is None:
            await self._wait_readable()
        if not received:
            raise ConnectionClosed()
        self._frames.buffer_updated(received)

    async def _wait_readable(self) -> None:
        self.idle_since = self._waiting_from()
        try:
            await self.transport.wait_readable()
        finally:
            self.idle_since = None
        self._stop_if_interrupted()

    async def _claim(self, size: int) -> None:
        """Claim a large frame's size from the budget before its buffer is allocated."""
        if not self._budget.try_claim(size):
            self._waiting_from()
            self._claiming = True
            try:
                await self._budget.claim(size)
            finally:
                self._claiming = False
        self._claimed = size
        self._stop_if_interrupted()

    def _waiting_from(self) -> float:
        """Now, as a wait begins: a frame begun counts from its first wait."""
        self._waited = True
        now = trio.current_time()
        if self.frame_since is None and self._frames.frame_begun:
            self.frame_since = now
        return now

    def _stop_if_interrupted(self) -> None:
        # An interrupt that came as the wait ended did not cancel it; the next checkpoint would
        # be cancelled instead, in the middle of handling a request.
        if self._interrupted:
            raise ReadInterrupted()
