"""A blocking Kafka connection made of the project's own codecs, for what talks to a broker from
outside an event loop: the pytest plugin's fixtures, and the benchmarks' and tests' probes."""

from __future__ import annotations

import socket

from protocol.framing import FrameBuffer, InFlightRequests

# A connect, or a wait for a response, gives up after this long by default.
TIMEOUT_SECONDS = 30


class WireConnection:
    """Kafka requests over a blocking socket, framed and correlated by protocol.framing: for
    probes, benchmarks, tests and the pytest plugin, which want exact control and no client library."""

    def __init__(self, sock: socket.socket, client_id: str = "comlog-bench") -> None:
        self.socket = sock
        self._in_flight = InFlightRequests(client_id)
        self._frames = FrameBuffer()

    @classmethod
    def connect(cls, port: int, timeout: float = TIMEOUT_SECONDS, client_id: str = "comlog-bench",
                host: str = "127.0.0.1", **options) -> WireConnection:
        """A connection to `host`:`port`; `options` go to socket.create_connection."""
        return cls(socket.create_connection((host, port), timeout=timeout, **options), client_id)

    def send(self, api_key: int, api_version: int, body: dict, correlation_id: int | None = None) -> int:
        """Send a request; its correlation id (the next one unless given)."""
        correlation_id, data = self._in_flight.request(api_key, api_version, body, correlation_id)
        self.socket.sendall(data)
        return correlation_id

    def receive_frame(self) -> bytes | bytearray:
        """The next response frame as it came (for requests sent as raw bytes)."""
        while (frame := self._frames.next_frame()) is None:
            received = self.socket.recv_into(self._frames.get_buffer())
            if not received:
                raise ConnectionResetError("the server closed the connection")
            self._frames.buffer_updated(received)
        return frame

    def receive(self):
        """The header and body of the response to the oldest request sent and not yet answered."""
        return self._in_flight.response(self.receive_frame())

    def request(self, api_key: int, api_version: int, body: dict):
        """Send one request and return its response body."""
        self.send(api_key, api_version, body)
        return self.receive()[1]

    def close(self) -> None:
        self.socket.close()

    def __enter__(self) -> WireConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
