"""Kafka's primitive types: wire layout, both directions, interpreted and compiled alike."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import ProtocolError
from protocol.primitives import (
    BOOLEAN, FLOAT64, INT8, INT16, INT32, INT64, UINT16, UINT32, UUID, ZERO_UUID, ChunkWriter,
    FrameReader, KafkaArray, KafkaBytes, KafkaString, KafkaType, Records, TaggedFields,
)

# The variable-length types as the protocol guide names them; declarations build their own,
# named after the field they encode.
STRING = KafkaString(False, False, "STRING")
NULLABLE_STRING = KafkaString(False, True, "NULLABLE_STRING")
COMPACT_STRING = KafkaString(True, False, "COMPACT_STRING")
COMPACT_NULLABLE_STRING = KafkaString(True, True, "COMPACT_NULLABLE_STRING")
BYTES = KafkaBytes(False, False, "BYTES")
NULLABLE_BYTES = KafkaBytes(False, True, "NULLABLE_BYTES")
COMPACT_BYTES = KafkaBytes(True, False, "COMPACT_BYTES")
COMPACT_NULLABLE_BYTES = KafkaBytes(True, True, "COMPACT_NULLABLE_BYTES")
RECORDS = Records(False, True, "RECORDS")
COMPACT_RECORDS = Records(True, True, "COMPACT_RECORDS")
TAGGED_FIELDS = TaggedFields({}, "TAGGED_FIELDS")


def ARRAY(element: KafkaType, nullable: bool = False) -> KafkaArray:  # noqa: N802 - Kafka's type name
    return KafkaArray(element, False, nullable, "ARRAY")


def COMPACT_ARRAY(element: KafkaType, nullable: bool = False) -> KafkaArray:  # noqa: N802
    return KafkaArray(element, True, nullable, "COMPACT_ARRAY")

WIRE_CASES = [
    (INT8, -2, b"\xfe"),
    (INT16, -2, b"\xff\xfe"),
    (INT32, 0x01020304, b"\x01\x02\x03\x04"),
    (INT64, -1, b"\xff" * 8),
    (UINT16, 0xFFFE, b"\xff\xfe"),
    (UINT32, 0xFFFFFFFE, b"\xff\xff\xff\xfe"),
    (FLOAT64, 1.5, b"\x3f\xf8" + bytes(6)),
    (BOOLEAN, True, b"\x01"),
    (BOOLEAN, False, b"\x00"),
    (UUID, uuid.UUID(int=0x0102), bytes(14) + b"\x01\x02"),
    (STRING, "héllo", b"\x00\x06h\xc3\xa9llo"),
    (STRING, "", b"\x00\x00"),
    (NULLABLE_STRING, None, b"\xff\xff"),
    (COMPACT_STRING, "ab", b"\x03ab"),
    (COMPACT_STRING, "", b"\x01"),
    (COMPACT_NULLABLE_STRING, None, b"\x00"),
    (BYTES, b"\x00\x01", b"\x00\x00\x00\x02\x00\x01"),
    (NULLABLE_BYTES, None, b"\xff\xff\xff\xff"),
    (COMPACT_BYTES, b"x" * 200, b"\xc9\x01" + b"x" * 200),
    (COMPACT_NULLABLE_BYTES, None, b"\x00"),
    (RECORDS, b"batch", b"\x00\x00\x00\x05batch"),
    (RECORDS, None, b"\xff\xff\xff\xff"),
    (COMPACT_RECORDS, b"", b"\x01"),
    (ARRAY(INT16), [1, 2], b"\x00\x00\x00\x02\x00\x01\x00\x02"),
    (ARRAY(INT16, nullable=True), None, b"\xff\xff\xff\xff"),
    (COMPACT_ARRAY(COMPACT_STRING), ["a", ""], b"\x03\x02a\x01"),
    (COMPACT_ARRAY(INT8, nullable=True), None, b"\x00"),
    (COMPACT_ARRAY(INT8), [], b"\x01"),
    (TAGGED_FIELDS, {}, b"\x00"),
    (TAGGED_FIELDS, {5: b"ab", 1: b""}, b"\x02\x01\x00\x05\x02ab"),
    (TaggedFields({0: INT32, 1: COMPACT_STRING}, "tags"), {0: 7, 1: "x"},
     b"\x02\x00\x04\x00\x00\x00\x07\x01\x02\x02x"),
]


def _id(case):
    kind, value, _ = case
    return f"{kind.path}-{value!r:.20}"


@pytest.mark.parametrize("case", WIRE_CASES, ids=_id)
def test_wire_layout_both_ways_interpreted_and_compiled(case):
    kind, value, wire = case
    for construct in (kind, kind.compile()):
        assert construct.build(value) == wire
        assert construct.parse(wire) == value


def test_boolean_reads_any_non_zero_byte_as_true():
    assert BOOLEAN.parse(b"\x02") is True


def test_uuid_decodes_to_uuid_objects():
    assert UUID.parse(bytes(16)) == ZERO_UUID
    assert isinstance(UUID.parse(bytes(16)), uuid.UUID)


def test_records_are_a_view_of_the_frame_being_read():
    frame = b"\x00\x00\x00\x03abc"
    for construct in (RECORDS, RECORDS.compile()):
        view = construct.parse_stream(FrameReader(frame))
        assert isinstance(view, memoryview) and view.obj is frame and view == b"abc"
    # A plain stream has no frame to point into: the payload is read as bytes.
    assert RECORDS.compile().parse(frame) == b"abc"


def test_records_continue_after_the_view():
    reader = FrameReader(b"\x02xy\x01", 0)
    assert COMPACT_RECORDS.parse_stream(reader) == b"x"
    assert reader.tell() == 2


def test_tagged_fields_read_in_any_order_and_write_in_tag_order():
    wire_out_of_order = b"\x02\x05\x02ab\x01\x00"
    assert TAGGED_FIELDS.parse(wire_out_of_order) == {5: b"ab", 1: b""}
    assert TAGGED_FIELDS.build({5: b"ab", 1: b""}) == b"\x02\x01\x00\x05\x02ab"


def test_a_known_tag_must_fill_exactly_its_declared_size():
    tags = TaggedFields({0: INT16}, "tags")
    with pytest.raises(ProtocolError, match="tagged field 0 declares 3 bytes but holds 2"):
        tags.parse(b"\x01\x00\x03\x00\x01\x02")


def test_chunk_writer_keeps_opaque_records_apart():
    class FileSlice:
        def __len__(self):
            return 4

    file_slice = FileSlice()
    writer = ChunkWriter()
    RECORDS.build_stream(file_slice, writer)
    RECORDS.build_stream(b"ab", writer)
    assert writer.chunks() == [b"\x00\x00\x00\x04", file_slice, b"\x00\x00\x00\x02ab"]
    with pytest.raises(ProtocolError, match="encode_chunks"):
        RECORDS.build(file_slice)


@pytest.mark.parametrize("kind, wire, message", [
    (INT32, b"\x00\x01", "needs 4 bytes, only 2 left"),
    (UUID, bytes(15), "needs 16 bytes"),
    # Compact lengths and tagged-field headers are unsigned varints of at most 32 bits.
    (COMPACT_BYTES, b"\x80\x80", "truncated varint"),
    (COMPACT_BYTES, b"\xff\xff\xff\xff\xff\x01", "varint exceeds 32 bits"),
    (TAGGED_FIELDS, b"\x80\x80\x80\x80\x80\x00", "varint longer than 5 bytes"),
    (STRING, b"\x00\x05abc", "length 5 exceeds the 3 bytes left"),
    (STRING, b"\xff\xff", "invalid length -1"),
    (STRING, b"\xff\xfe", "invalid length -2"),
    (STRING, b"\x00\x02\xc3\x28", "invalid UTF-8"),
    (COMPACT_STRING, b"\x00", "invalid length -1"),
    (NULLABLE_BYTES, b"\xff\xff\xff\xfe", "invalid length -2"),
    (BYTES, b"\x7f\xff\xff\xff", "length 2147483647 exceeds the 0 bytes left"),
    (COMPACT_BYTES, b"\xff\xff\xff\xff\x07", "exceeds"),
    (RECORDS, b"\x7f\xff\xff\xffabc", "length 2147483647 exceeds the 3 bytes left"),
    (ARRAY(INT32), b"\x7f\xff\xff\xff\x00\x00\x00\x00", "2147483647 elements cannot fit in the 4 bytes left"),
    (ARRAY(INT32), b"\xff\xff\xff\xff", "invalid array length -1"),
    (COMPACT_ARRAY(INT64), b"\x03" + bytes(8), "2 elements cannot fit"),
    (TAGGED_FIELDS, b"\x7f\x00", "127 tagged fields cannot fit"),
    (TAGGED_FIELDS, b"\x01\x00\x09ab", "length 9 exceeds the 2 bytes left"),
])
def test_malformed_input_raises_protocol_error_naming_the_field(kind, wire, message):
    named = kind.at("SomeRequest v1: some.field")
    for construct in (named, named.compile()):
        with pytest.raises(ProtocolError, match=message) as caught:
            construct.parse(wire)
        assert str(caught.value).startswith("SomeRequest v1: some.field")


@pytest.mark.parametrize("kind, value, message", [
    (INT8, 128, "INT8: cannot encode 128"),
    (STRING, None, "null is not allowed"),
    (STRING, "x" * 40000, "too long"),
    (BYTES, "text", "expected bytes"),
    (ARRAY(INT8), None, "null is not allowed"),
    (TAGGED_FIELDS, {1: 5}, "unknown tagged field 1 must be bytes"),
])
def test_values_that_do_not_fit_raise_protocol_error(kind, value, message):
    with pytest.raises(ProtocolError, match=message):
        kind.build(value)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=40))
def test_random_bytes_raise_only_protocol_error(data):
    for kind in (STRING, COMPACT_NULLABLE_STRING, NULLABLE_BYTES, COMPACT_RECORDS,
                 ARRAY(COMPACT_STRING), COMPACT_ARRAY(UUID, nullable=True), TAGGED_FIELDS,
                 TaggedFields({0: INT32, 2: COMPACT_ARRAY(INT16)}, "tags")):
        try:
            kind.parse(data)
        except ProtocolError:
            pass
