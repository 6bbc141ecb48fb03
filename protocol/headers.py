"""Request and response headers.

Frames here are what follows the 4-byte size prefix (protocol.framing). A request header is v1 (api key, api
version, correlation id, client id), or v2 (v1 plus tagged fields) when the request's version is
flexible; the client id stays an INT16-length string even in v2. A response header is v0
(correlation id), or v1 (plus tagged fields) when the response's version is flexible, except
that ApiVersions responses always use v0 so that a client can read the answer of a broker whose
versions it does not know yet.

Decoded headers are construct ``Container`` objects with ``request_api_key``,
``request_api_version``, ``correlation_id`` and ``client_id`` (requests) or
``correlation_id`` (responses).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from io import BytesIO
from typing import Any

from construct import Container

from .errors import ProtocolError
from .messages import REQUESTS, RESPONSES, ApiKey
from .primitives import FrameReader, ViewReader, open_frame
from .schema import MessageCodec, field, header

REQUEST_HEADER = header(
    "RequestHeader", "0-2", "2+",
    field("request_api_key", "int16", "0+"),
    field("request_api_version", "int16", "0+"),
    field("correlation_id", "int32", "0+"),
    field("client_id", "string", "1+", nullable="1+", flexible="none"),
)

RESPONSE_HEADER = header(
    "ResponseHeader", "0-1", "1+",
    field("correlation_id", "int32", "0+"),
)

_API_KEY_AND_VERSION = struct.Struct(">hh")


def request_header_version(api_key: int, api_version: int) -> int:
    """2 for flexible versions, else 1 (an API key we do not declare is read as v1)."""
    codec = REQUESTS.get(api_key)
    return 2 if codec is not None and codec.is_flexible(api_version) else 1


def response_header_version(api_key: int, api_version: int) -> int:
    """1 for flexible versions, else 0; always 0 for ApiVersions."""
    if api_key == ApiKey.API_VERSIONS:
        return 0
    codec = RESPONSES.get(api_key)
    return 1 if codec is not None and codec.is_flexible(api_version) else 0


def _read_request_header(reader: FrameReader | ViewReader) -> Container:
    start = reader.tell()
    if reader.end - start < _API_KEY_AND_VERSION.size:
        raise ProtocolError(f"RequestHeader: frame of {reader.end - start} bytes is too short")
    api_key, api_version = _API_KEY_AND_VERSION.unpack_from(reader.frame, start)
    return REQUEST_HEADER.read(request_header_version(api_key, api_version), reader)


def decode_request_header(frame: bytes | bytearray | memoryview, offset: int = 0) -> tuple[Container, int]:
    """The request header at ``frame[offset:]`` and the offset of the body after it.

    Works for any API key and version, known or not, so that the broker can always answer
    (e.g. UNSUPPORTED_VERSION to an ApiVersions request newer than it knows).
    """
    reader = open_frame(frame, offset)
    request_header = _read_request_header(reader)
    return request_header, reader.tell()


def decode_request(frame: bytes | bytearray | memoryview) -> tuple[Container, Container]:
    """Header and body of a whole request frame; unknown keys and versions raise ProtocolError."""
    reader = open_frame(frame)
    request_header = _read_request_header(reader)
    body = _codec(REQUESTS, request_header.request_api_key).read_to_end(request_header.request_api_version, reader)
    return request_header, body


def encode_request_header(api_key: int, api_version: int, correlation_id: int, client_id: str | None) -> bytes:
    return REQUEST_HEADER.encode(request_header_version(api_key, api_version), {
        "request_api_key": api_key, "request_api_version": api_version,
        "correlation_id": correlation_id, "client_id": client_id})


def encode_request(api_key: int, api_version: int, correlation_id: int, client_id: str | None,
                   body: Mapping[str, Any]) -> bytes:
    """A whole request frame (without the size prefix), as a client sends it."""
    io = BytesIO()
    io.write(encode_request_header(api_key, api_version, correlation_id, client_id))
    _codec(REQUESTS, api_key).write(api_version, body, io)
    return io.getvalue()


def encode_response_header(api_key: int, api_version: int, correlation_id: int) -> bytes:
    """The header of the response to request ``api_key`` v``api_version``."""
    return RESPONSE_HEADER.encode(response_header_version(api_key, api_version), {"correlation_id": correlation_id})


def decode_response_header(frame: bytes | bytearray | memoryview, api_key: int, api_version: int,
                           offset: int = 0) -> tuple[Container, int]:
    """The response header at ``frame[offset:]`` (its version follows from the request's) and
    the offset of the body after it."""
    reader = open_frame(frame, offset)
    response_header = RESPONSE_HEADER.read(response_header_version(api_key, api_version), reader)
    return response_header, reader.tell()


def decode_response_body(frame: bytes | bytearray | memoryview, offset: int, api_key: int,
                         api_version: int) -> Container:
    """The body at ``frame[offset:]`` (after the header) of a response to ``api_key`` v``api_version``."""
    return _codec(RESPONSES, api_key).read_to_end(api_version, open_frame(frame, offset))


def decode_response(frame: bytes | bytearray | memoryview, api_key: int, api_version: int) -> tuple[Container, Container]:
    """Header and body of a whole response frame to request ``api_key`` v``api_version``."""
    response_header, offset = decode_response_header(frame, api_key, api_version)
    return response_header, decode_response_body(frame, offset, api_key, api_version)


def _codec(table: Mapping[int, MessageCodec], api_key: int) -> MessageCodec:
    codec = table.get(api_key)
    if codec is None:
        raise ProtocolError(f"unknown API key {api_key}")
    return codec

