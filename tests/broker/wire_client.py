"""A minimal Kafka client over a real socket, speaking through the project's codec: for tests
that need exact control of what is sent (versions, bad batches, pipelining)."""

from __future__ import annotations

import trio

from protocol.framing import FrameBuffer, InFlightRequests


class WireClient:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._in_flight = InFlightRequests("wire-client")
        self._frames = FrameBuffer()

    @classmethod
    async def connect(cls, port: int) -> WireClient:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def send(self, api_key: int, version: int, body: dict, correlation_id: int | None = None) -> int:
        correlation_id, data = self._in_flight.request(api_key, version, body, correlation_id)
        await self.stream.send_all(data)
        return correlation_id

    async def send_raw(self, data: bytes) -> None:
        """Bytes as they are: their response, if any, is for receive_frame()."""
        await self.stream.send_all(data)

    async def receive_frame(self) -> bytes | bytearray | None:
        """The next response frame, or None once the broker has closed the connection."""
        while (frame := self._frames.next_frame()) is None:
            buffer = self._frames.get_buffer()
            # Any trio stream: a plain socket's, or a TLS one's (trio.SSLStream).
            received = await self.stream.receive_some(len(buffer))
            if not received:
                return None
            buffer[:len(received)] = received
            del buffer  # a large frame's buffer may grow, which no view of it may outlive
            self._frames.buffer_updated(len(received))
        return frame

    async def receive(self):
        """The header and body of the response to the oldest request sent and not yet answered."""
        frame = await self.receive_frame()
        assert frame is not None, "the broker closed the connection"
        return self._in_flight.response(frame)

    async def request(self, api_key: int, version: int, body: dict):
        """Send one request and return its decoded response body."""
        await self.send(api_key, version, body)
        return (await self.receive())[1]

    async def aclose(self) -> None:
        await self.stream.aclose()
