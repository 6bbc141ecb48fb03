"""Malformed input of every kind raises ProtocolError and nothing else, quickly and small."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from message_samples import sample
from protocol.errors import ProtocolError
from protocol.headers import decode_request, encode_request
from protocol.messages import MESSAGES, REQUESTS
from protocol.primitives import FrameReader, ViewReader

FUZZ_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HUGE_LENGTHS = [b"\x7f\xff\xff\xff", b"\xff\xff\xff\xff", b"\x80\x00\x00\x00", b"\xff\xff\xff\xff\x07", b"\x7f\xff"]


def decode_or_protocol_error(codec, version, frame):
    for reader in (FrameReader(frame), ViewReader(bytearray(frame))):
        try:
            codec.read_to_end(version, reader)
        except ProtocolError:
            pass


@st.composite
def mutated(draw, frame: bytes) -> bytes:
    """A valid frame truncated, overwritten, extended, or with a huge length planted in it."""
    position = draw(st.integers(0, len(frame)))
    mutation = draw(st.sampled_from(["truncate", "overwrite", "insert", "huge length"]))
    if mutation == "truncate":
        return frame[:position]
    if mutation == "insert":
        return frame[:position] + draw(st.binary(min_size=1, max_size=8)) + frame[position:]
    patch = draw(st.binary(min_size=1, max_size=4)) if mutation == "overwrite" else draw(st.sampled_from(HUGE_LENGTHS))
    return frame[:position] + patch + frame[position + len(patch):]


def version_of(codec):
    return st.integers(codec.valid_versions.low, codec.valid_versions.high)


@pytest.mark.parametrize("codec", MESSAGES, ids=lambda codec: codec.name)
@FUZZ_SETTINGS
@given(data=st.data())
def test_random_bytes_raise_only_protocol_error(codec, data):
    version = data.draw(version_of(codec), label="version")
    decode_or_protocol_error(codec, version, data.draw(st.binary(max_size=64), label="frame"))


@pytest.mark.parametrize("codec", MESSAGES, ids=lambda codec: codec.name)
@FUZZ_SETTINGS
@given(data=st.data())
def test_mutated_valid_frames_raise_only_protocol_error(codec, data):
    version = data.draw(version_of(codec), label="version")
    frame = codec.encode(version, sample(codec, version, full=data.draw(st.booleans(), label="full")))
    decode_or_protocol_error(codec, version, data.draw(mutated(frame), label="frame"))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(REQUESTS)), st.data())
def test_mutated_request_frames_with_headers_raise_only_protocol_error(api_key, data):
    codec = REQUESTS[api_key]
    version = data.draw(version_of(codec), label="version")
    frame = encode_request(api_key, version, 1, "client", sample(codec, version))
    try:
        decode_request(data.draw(mutated(frame), label="frame"))
    except ProtocolError:
        pass


@pytest.mark.parametrize("version, frame, message", [
    (9, b"\x00" + struct.pack(">hi", 1, 100) + b"\xff\xff\xff\xff\x07",
     r"ProduceRequest v9: topic_data: 2147483646 elements cannot fit in the 0 bytes left"),
    (3, b"\xff\xff" + struct.pack(">hi", 1, 100) + struct.pack(">i", 1) + b"\x7f\xffab" + bytes(4),
     r"ProduceRequest v3: topic_data\[\]\.name: length 32767 exceeds the 6 bytes left"),
    (8, b"\xff\xff" + struct.pack(">hi", 1, 100) + struct.pack(">i", 1) + b"\x00\x01t" + struct.pack(">ii", 1, 0)
     + struct.pack(">i", 0x7FFFFFFF) + b"tiny",
     r"ProduceRequest v8: topic_data\[\]\.partition_data\[\]\.records: length 2147483647 exceeds the 4 bytes left"),
])
def test_huge_length_claims_fail_at_once_naming_the_field(version, frame, message):
    with pytest.raises(ProtocolError, match=message):
        REQUESTS[0].decode(version, frame)
