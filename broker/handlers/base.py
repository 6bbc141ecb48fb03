"""The handler registry: each API's handler, the versions it serves, and the request/response plumbing."""

from __future__ import annotations

import dataclasses
from typing import Awaitable, Callable

from protocol import headers, messages
from protocol.primitives import open_frame


class CloseConnection(Exception):
    """The request cannot be answered: the connection is closed, with this reason logged."""


class UnsupportedRequest(CloseConnection):
    """A request this broker cannot answer (unknown API key, or a version outside its range)."""


@dataclasses.dataclass(frozen=True)
class Api:
    api_key: int
    handle: Callable[..., Awaitable[dict | None]]
    min_version: int
    max_version: int

    @property
    def request(self):
        return messages.REQUESTS[self.api_key]

    @property
    def response(self):
        return messages.RESPONSES[self.api_key]

    async def respond(self, broker, header, frame: bytes | bytearray, body_offset: int) -> list | None:
        """Decode the body, run the handler, and encode header + response as chunks (None: no response)."""
        if not self.min_version <= header.request_api_version <= self.max_version:
            raise UnsupportedRequest(
                f"{self.request.name} v{header.request_api_version} is outside the supported "
                f"v{self.min_version}-v{self.max_version}")
        # Like Kafka, ignore bytes after the message: librdkafka 2.x sends 3 of them after some
        # Metadata v12 requests, and a real broker answers those.
        request = self.request.read(header.request_api_version, open_frame(frame, body_offset))
        response = await self.handle(broker, header, request)
        if response is None:
            return None
        return [headers.encode_response_header(header.request_api_key, header.request_api_version, header.correlation_id),
                *self.response.encode_chunks(header.request_api_version, response)]


HANDLERS: dict[int, Api] = {}


def handles(api_key: int, min_version: int | None = None, max_version: int | None = None, cls=Api):
    """Register a handler for `api_key` over the codec's versions, optionally narrowed."""
    def register(handle):
        low, high = messages.REQUESTS[api_key].valid_versions
        HANDLERS[api_key] = cls(api_key, handle,
                                low if min_version is None else max(low, min_version),
                                high if max_version is None else min(high, max_version))
        return handle
    return register


async def answer_each_partition(broker, request_topics, answer, *, topic_field: str = "name",
                                partition_field: str = "partition_index") -> list[dict]:
    """The topics -> partitions answer of requests that name partitions (ListOffsets, DeleteRecords,
    OffsetForLeaderEpoch): `await answer(partition, wanted)` gives each one's fields, with None for
    a partition this broker does not host."""
    return [{topic_field: topic[topic_field],
             "partitions": [await answer(broker.registry.partition(topic[topic_field], wanted[partition_field]),
                                         wanted)
                            for wanted in topic.partitions]}
            for topic in request_topics]
