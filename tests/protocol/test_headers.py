"""Request headers v0-v2 and response headers v0-v1, and the version each API uses."""

from __future__ import annotations

import struct
from io import BytesIO

import pytest

from message_samples import ALL_VERSIONS, sample
from protocol.errors import ProtocolError
from protocol.headers import (
    REQUEST_HEADER, RESPONSE_HEADER, decode_request, decode_request_header, decode_response,
    decode_response_header, encode_request, encode_request_header, encode_response_header, request_header_version,
    response_header_version,
)
from protocol.messages import REQUESTS, RESPONSES, ApiKey

REQUEST_VERSIONS = [(codec.api_key, version) for codec, version in ALL_VERSIONS if codec.kind == "request"]


def test_request_header_versions_on_the_wire():
    fields = {"request_api_key": 3, "request_api_version": 12, "correlation_id": 0x01020304, "client_id": "cli"}
    prefix = b"\x00\x03\x00\x0c\x01\x02\x03\x04"
    assert REQUEST_HEADER.encode(0, fields) == prefix
    assert REQUEST_HEADER.encode(1, fields) == prefix + b"\x00\x03cli"
    # v2 adds tagged fields, but its client_id keeps the INT16 length of v1.
    assert REQUEST_HEADER.encode(2, fields) == prefix + b"\x00\x03cli\x00"
    assert REQUEST_HEADER.encode(2, {**fields, "client_id": None}) == prefix + b"\xff\xff\x00"
    for version in range(3):
        decoded = REQUEST_HEADER.decode(version, REQUEST_HEADER.encode(version, fields))
        assert decoded == {name: value for name, value in fields.items() if version or name != "client_id"}


def test_response_header_versions_on_the_wire():
    assert RESPONSE_HEADER.encode(0, {"correlation_id": 7}) == b"\x00\x00\x00\x07"
    assert RESPONSE_HEADER.encode(1, {"correlation_id": 7}) == b"\x00\x00\x00\x07\x00"
    assert RESPONSE_HEADER.decode(1, b"\x00\x00\x00\x07\x00").correlation_id == 7


@pytest.mark.parametrize("api_key, version", REQUEST_VERSIONS)
def test_header_versions_follow_flexible_versions(api_key, version):
    flexible = REQUESTS[api_key].is_flexible(version)
    assert request_header_version(api_key, version) == (2 if flexible else 1)
    assert response_header_version(api_key, version) == (1 if flexible and api_key != ApiKey.API_VERSIONS else 0)


def test_api_versions_responses_always_use_header_v0():
    for version in range(5):
        assert encode_response_header(ApiKey.API_VERSIONS, version, 9) == b"\x00\x00\x00\x09"
    assert request_header_version(ApiKey.API_VERSIONS, 3) == 2
    assert encode_response_header(0, 9, 9) == b"\x00\x00\x00\x09\x00"


def test_request_round_trip_through_whole_frames():
    body = sample(REQUESTS[0], 9)
    frame = encode_request(0, 9, 42, "client-1", body)
    header, decoded = decode_request(frame)
    assert header == {"request_api_key": 0, "request_api_version": 9, "correlation_id": 42, "client_id": "client-1"}
    assert decoded == REQUESTS[0].decode(9, REQUESTS[0].encode(9, body))
    header, body_offset = decode_request_header(frame)
    assert header.correlation_id == 42
    assert REQUESTS[0].decode(9, frame, body_offset) == decoded


def test_response_round_trip_through_whole_frames():
    body = {"error_code": 0, "api_keys": [{"api_key": 0, "min_version": 3, "max_version": 9}], "throttle_time_ms": 0}
    frame = encode_response_header(ApiKey.API_VERSIONS, 3, 5) + RESPONSES[ApiKey.API_VERSIONS].encode(3, body)
    header, decoded = decode_response(frame, ApiKey.API_VERSIONS, 3)
    assert header.correlation_id == 5 and decoded.api_keys[0].max_version == 9
    header, body_offset = decode_response_header(frame, ApiKey.API_VERSIONS, 3)
    assert body_offset == 4


def test_a_request_header_of_a_version_newer_than_known_is_still_read():
    # A client probing ApiVersions v9 sends header v2 since flexible versions are open-ended;
    # the broker must read it to answer UNSUPPORTED_VERSION.
    frame = encode_request_header(ApiKey.API_VERSIONS, 9, 77, "probe") + b"\x00future body"
    header, body_offset = decode_request_header(frame)
    assert (header.request_api_version, header.correlation_id, header.client_id) == (9, 77, "probe")
    assert frame[body_offset:] == b"\x00future body"
    with pytest.raises(ProtocolError, match="ApiVersionsRequest: version 9 is not supported"):
        decode_request(frame)


def test_a_request_header_of_an_unknown_api_key_is_read_as_v1():
    frame = struct.pack(">hhih", 999, 0, 3, 1) + b"c" + b"body"
    header, body_offset = decode_request_header(frame)
    assert (header.request_api_key, header.client_id, frame[body_offset:]) == (999, "c", b"body")
    with pytest.raises(ProtocolError, match="unknown API key 999"):
        decode_request(frame)


@pytest.mark.parametrize("frame", [b"", b"\x00\x03\x00", b"\x00\x03\x00\x0c\x00\x00", b"\x00\x03\x00\x01\x00\x00\x00\x01\x00\x09ab"])
def test_truncated_request_headers_raise_protocol_error(frame):
    with pytest.raises(ProtocolError, match="RequestHeader"):
        decode_request_header(frame)


pytest.importorskip("kafka.protocol")
from kafka.protocol.api_header import RequestHeader  # noqa: E402

from kafka_python_classes import json_class  # noqa: E402

KAFKA_CASES = [(api_key, version) for api_key, version in REQUEST_VERSIONS
               if json_class(REQUESTS[api_key].name, version)]


@pytest.mark.parametrize("api_key, version", KAFKA_CASES)
def test_headers_match_kafka_python(api_key, version):
    request_class = json_class(REQUESTS[api_key].name, version)
    theirs = RequestHeader(request_api_key=api_key, request_api_version=version, correlation_id=11,
                           client_id="kafka-python").encode(flexible=request_class.flexible_version_q(version))
    assert encode_request_header(api_key, version, 11, "kafka-python") == bytes(theirs)

    response_class = json_class(RESPONSES[api_key].name, version)
    ours = BytesIO(encode_response_header(api_key, version, 12))
    assert response_class.parse_header(ours, version=version).correlation_id == 12
    assert ours.tell() == len(ours.getvalue())
