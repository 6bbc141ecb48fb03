"""Kafka's framing, sans-IO: on a connection every request and every response is a 4-byte
big-endian size, then that many bytes (the frame, which protocol.headers decodes).

As h11 keeps HTTP's framing in its core, bytes go in here and whole frames come out, with no
socket or trio in sight, so that the broker, the test clients and the benchmarks read frames the
same way.

Public API:

- ``SIZE_PREFIX`` (a ``struct.Struct``) and ``framed(frame)``: the prefix, and a frame with it.
- ``FrameBuffer``: bytes in, frames out. A reader receives straight into the memory the buffer
  lends (``get_buffer()``), says how much arrived (``buffer_updated(count)``), as asyncio's
  BufferedProtocol does, and takes whole frames with ``next_frame()``. Frames that fit the
  read-ahead are copied out of it once; a larger one is received in place into a buffer of its
  own, so a 1 MiB produce request is copied by the kernel only. That buffer starts at no more
  than 1 MiB and doubles as bytes arrive, so a peer announcing a huge frame and stopping costs
  about what it sent, and it is allocated only by the first ``get_buffer()`` after the size is
  known: a reader that accounts for memory (the broker's request budget) does so in between.
  ``FrameTooLarge`` (a ProtocolError) for a negative size or one over the limit.
  ``receive_data(data, read_size)`` copies in bytes already at hand and takes the frames.
- ``InFlightRequests``: a client's side of correlation: it encodes and frames requests with the
  next correlation id, remembers each one's API key and version, and decodes the response frames
  in order, rejecting one whose correlation id is not the oldest in flight
  (``UnexpectedResponse``, a ProtocolError).
"""

from __future__ import annotations

import collections
import itertools
import struct
from collections.abc import Mapping
from typing import Any

from construct import Container

from . import headers
from .errors import ProtocolError
from .messages import ApiKey

SIZE_PREFIX = struct.Struct(">i")
# The largest size the prefix can state.
MAX_FRAME_BYTES = 2**31 - 1
READ_AHEAD = 16 * 1024
# A large frame's own buffer starts at most this big: record batches of 1 MB (librdkafka's and
# Kafka's default batch limit) fit at once.
FIRST_BUFFER = 1024 * 1024


def framed(frame: bytes) -> bytes:
    """`frame` with its size prefix, as it goes on the wire."""
    return SIZE_PREFIX.pack(len(frame)) + frame


class FrameTooLarge(ProtocolError):
    def __init__(self, size: int, limit: int) -> None:
        # Kept so that a listener can tell other protocols' first bytes (a TLS ClientHello reads
        # as a 369 MB frame) from a client's mistake.
        self.size = size
        problem = "negative" if size < 0 else f"over the limit of {limit} bytes"
        super().__init__(f"frame of {size} bytes is {problem}")


class FrameBuffer:
    """The frames of one byte stream, received through the memory this buffer lends.

    Each frame that next_frame() gives is the caller's: it is not a view of the buffer."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES, read_ahead: int = READ_AHEAD) -> None:
        self.max_frame_bytes = max_frame_bytes
        # Frames up to this size come out of the read-ahead; larger ones get a buffer each.
        self.read_ahead_frame_limit = min(read_ahead - SIZE_PREFIX.size, max_frame_bytes)
        self._buffer = bytearray(read_ahead)
        self._view = memoryview(self._buffer)
        self._start = 0
        self._end = 0
        # The size of the large frame being received (0 between large frames), its buffer once
        # allocated, and how much of it has arrived.
        self.large_frame_size = 0
        self._large: bytearray | None = None
        self._filled = 0

    @property
    def frame_begun(self) -> bool:
        """Whether bytes of a frame not yet whole are held (after next_frame() gave None)."""
        return bool(self.large_frame_size) or self._end > self._start

    def next_frame(self) -> bytes | bytearray | None:
        """The next whole frame without its size prefix, or None until more bytes arrive."""
        if self.large_frame_size:
            return self._take_large_frame()
        start = self._start
        if self._end - start < SIZE_PREFIX.size:
            return None
        (size,) = SIZE_PREFIX.unpack_from(self._buffer, start)
        if not 0 <= size <= self.read_ahead_frame_limit:
            self._begin_large_frame(size)
            return None
        # The size prefix stays in the buffer until the frame is whole, so that frame_begun
        # holds however little of the frame has arrived.
        end = start + SIZE_PREFIX.size + size
        if self._end < end:
            return None
        self._start = end
        return bytes(self._view[start + SIZE_PREFIX.size:end])  # one copy, not two

    def get_buffer(self) -> memoryview:
        """Where to receive the next bytes: a view to fill from its start and let go of before
        the next call here (a large frame's buffer grows between calls)."""
        if self.large_frame_size:
            return self._large_frame_room()
        if self._start:
            pending = self._end - self._start
            self._buffer[:pending] = self._buffer[self._start:self._end]
            self._start, self._end = 0, pending
        return self._view[self._end:]

    def buffer_updated(self, count: int) -> None:
        """`count` bytes were received at the start of the last get_buffer() view."""
        if self.large_frame_size:
            self._filled += count
        else:
            self._end += count

    def receive_data(self, data: bytes | bytearray | memoryview, read_size: int) -> list[bytes | bytearray]:
        """Copy in bytes already at hand (a test's, a benchmark's) as reads of at most
        `read_size` bytes would receive them, and take every whole frame that came out."""
        frames = []
        view = memoryview(data)
        while True:
            while (frame := self.next_frame()) is not None:
                frames.append(frame)
            if not view:
                return frames
            room = self.get_buffer()
            count = min(len(room), len(view), read_size)
            room[:count] = view[:count]
            del room  # a large frame's buffer may grow, which no view of it may outlive
            self.buffer_updated(count)
            view = view[count:]

    def _begin_large_frame(self, size: int) -> None:
        if not 0 <= size <= self.max_frame_bytes:
            raise FrameTooLarge(size, self.max_frame_bytes)
        self._start += SIZE_PREFIX.size
        self.large_frame_size = size

    def _large_frame_room(self) -> memoryview:
        """Room in the large frame's buffer, made on first use from what the read-ahead holds of
        it (less than the frame: the frame does not fit the read-ahead)."""
        frame = self._large
        if frame is None:
            frame = self._large = bytearray(min(self.large_frame_size, FIRST_BUFFER))
            self._filled = self._end - self._start
            frame[:self._filled] = self._view[self._start:self._end]
            self._start = self._end = 0
        elif self._filled == len(frame):
            frame += bytes(min(self.large_frame_size, 2 * self._filled) - self._filled)
        return memoryview(frame)[self._filled:]

    def _take_large_frame(self) -> bytearray | None:
        if self._large is None or self._filled < self.large_frame_size:
            return None
        frame, self._large = self._large, None
        self.large_frame_size = self._filled = 0
        return frame


class UnexpectedResponse(ProtocolError):
    """A response that does not answer the oldest request in flight."""


class InFlightRequests:
    """A client's requests on one connection that await their responses, as Kafka's client keeps
    them. A broker answers a connection's requests in order, so each response must carry the
    correlation id of the oldest request in flight."""

    def __init__(self, client_id: str | None, first_correlation_id: int = 1) -> None:
        self.client_id = client_id
        self._correlation_ids = itertools.count(first_correlation_id)
        # (correlation id, API key, API version) of each request awaiting its response, oldest first.
        self._waiting: collections.deque[tuple[int, int, int]] = collections.deque()

    def __len__(self) -> int:
        return len(self._waiting)

    def request(self, api_key: int, api_version: int, body: Mapping[str, Any],
                correlation_id: int | None = None) -> tuple[int, bytes]:
        """The correlation id (the next one unless given) and the framed request to send."""
        if correlation_id is None:
            correlation_id = next(self._correlation_ids)
        frame = headers.encode_request(api_key, api_version, correlation_id, self.client_id, body)
        # Kafka answers every request but a Produce with acks=0.
        if api_key != ApiKey.PRODUCE or body["acks"] != 0:
            self._waiting.append((correlation_id, api_key, api_version))
        return correlation_id, framed(frame)

    def response(self, frame: bytes | bytearray | memoryview) -> tuple[Container, Container]:
        """The header and body of the response frame to the oldest request in flight."""
        if not self._waiting:
            raise UnexpectedResponse("a response arrived with no request in flight")
        correlation_id, api_key, api_version = self._waiting[0]
        header, offset = headers.decode_response_header(frame, api_key, api_version)
        if header.correlation_id != correlation_id:
            raise UnexpectedResponse(f"a response with correlation id {header.correlation_id} arrived, "
                                     f"the oldest request in flight has {correlation_id}")
        self._waiting.popleft()
        return header, headers.decode_response_body(frame, offset, api_key, api_version)
