"""A minimal Kafka client over a real socket, speaking through the project's codec: for tests
that need exact control of what is sent (versions, bad batches, pipelining)."""

from __future__ import annotations

import itertools
import struct

import trio

from protocol import headers

_SIZE = struct.Struct(">i")


class WireClient:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._correlation_ids = itertools.count(1)
        self._buffer = bytearray()

    @classmethod
    async def connect(cls, port: int) -> WireClient:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def send(self, api_key: int, version: int, body: dict, correlation_id: int | None = None) -> int:
        correlation_id = next(self._correlation_ids) if correlation_id is None else correlation_id
        frame = headers.encode_request(api_key, version, correlation_id, "wire-client", body)
        await self.stream.send_all(_SIZE.pack(len(frame)) + frame)
        return correlation_id

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def receive_frame(self) -> bytes | None:
        """The next response frame, or None once the broker has closed the connection."""
        while True:
            if len(self._buffer) >= 4:
                (size,) = _SIZE.unpack_from(self._buffer)
                if len(self._buffer) >= 4 + size:
                    frame = bytes(self._buffer[4:4 + size])
                    del self._buffer[:4 + size]
                    return frame
            data = await self.stream.receive_some(1 << 20)
            if not data:
                return None
            self._buffer += data

    async def receive(self, api_key: int, version: int):
        frame = await self.receive_frame()
        assert frame is not None, "the broker closed the connection"
        return headers.decode_response(frame, api_key, version)

    async def request(self, api_key: int, version: int, body: dict):
        """Send one request and return its decoded response body."""
        correlation_id = await self.send(api_key, version, body)
        header, response = await self.receive(api_key, version)
        assert header.correlation_id == correlation_id
        return response

    async def aclose(self) -> None:
        await self.stream.aclose()
