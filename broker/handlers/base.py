"""The handler registry: each API's handler, the versions it serves, and the request/response plumbing."""

from __future__ import annotations

import dataclasses
from typing import Awaitable, Callable

from protocol import headers, messages
from protocol.errors import ApiError
from protocol.primitives import open_frame
from protocol.schema import Message, MessageCodec


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
        try:
            response = await self.handle(broker, header, request)
        except ApiError as exc:
            response = error_response(self.response, exc)
        if response is None:
            return None
        return [headers.encode_response_header(header.request_api_key, header.request_api_version, header.correlation_id),
                *self.response.encode_chunks(header.request_api_version, response)]


def error_fields(codec_or_struct, exc: ApiError) -> dict:
    """The fields that carry `exc` in a struct declaring `error_code` (and maybe `error_message`)."""
    names = codec_or_struct.names
    fields = {"error_code": exc.code}
    if "error_message" in names:
        fields["error_message"] = exc.message
    return fields


def error_response(codec: MessageCodec, exc: ApiError) -> Message:
    """The whole request failed: its response with the error at the top, the rest defaulted. A
    response without a top-level error code cannot say it: a handler raising there is a bug."""
    if "error_code" not in codec.names:
        raise TypeError(f"{codec.name} has no top-level error_code for {exc.code.name}") from exc
    return codec(**error_fields(codec, exc))


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
