"""Round trips of every declared message in every version, and the lookup API around them."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from message_samples import ALL_VERSIONS, expected, sample, strategy, version_id
from protocol.errors import ProtocolError
from protocol.messages import MESSAGES, REQUESTS, RESPONSES
from protocol.primitives import LARGE_FRAME, FrameReader, ViewReader
from protocol.schema import UNKNOWN_TAGS, Versions, field


@pytest.mark.parametrize("case", ALL_VERSIONS, ids=version_id)
@pytest.mark.parametrize("full", [True, False], ids=["full", "sparse"])
def test_round_trip(case, full):
    codec, version = case
    value = sample(codec, version, full)
    encoded = codec.encode(version, value)
    decoded = codec.decode(version, encoded)
    assert decoded == expected(codec, version, value)
    assert list(decoded) == [f.name for f in codec.fields if version in f.versions]
    assert codec.encode(version, decoded) == encoded


@pytest.mark.parametrize("case", ALL_VERSIONS, ids=version_id)
def test_interpreted_and_compiled_agree(case):
    codec, version = case
    encoded = codec.encode(version, sample(codec, version))
    assert codec.struct(version).build(codec.struct(version).parse(encoded)) == encoded
    assert codec.struct(version).parse(encoded) == codec.decode(version, encoded)


@pytest.mark.parametrize("case", ALL_VERSIONS, ids=version_id)
def test_large_buffers_are_read_in_place_with_the_same_result(case):
    codec, version = case
    encoded = codec.encode(version, sample(codec, version))
    assert codec.read_to_end(version, ViewReader(bytearray(encoded))) == codec.decode(version, encoded)


@pytest.mark.parametrize("case", ALL_VERSIONS, ids=version_id)
def test_missing_fields_take_their_defaults(case):
    codec, version = case
    assert codec.decode(version, codec.encode(version, {})) == expected(codec, version, {})


@pytest.mark.parametrize("codec", MESSAGES, ids=lambda codec: codec.name)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_values_round_trip(codec, data):
    version = data.draw(st.integers(codec.valid_versions.low, codec.valid_versions.high), label="version")
    value = data.draw(strategy(codec, version), label="value")
    encoded = codec.encode(version, value)
    assert codec.decode(version, encoded) == expected(codec, version, value)
    assert codec.encode(version, codec.decode(version, encoded)) == encoded


def test_fields_outside_the_version_are_ignored_on_encode_and_absent_on_decode():
    produce = REQUESTS[0]
    value = {"transactional_id": "txn", "acks": 1, "timeout_ms": 100, "topic_data": []}
    assert produce.encode(2, value) == produce.encode(2, {"acks": 1, "timeout_ms": 100})
    assert "transactional_id" not in produce.decode(2, produce.encode(2, value))
    assert produce.decode(3, produce.encode(3, value)).transactional_id == "txn"


def test_decoded_values_have_attribute_access():
    metadata = RESPONSES[3]
    value = sample(metadata, 12)
    decoded = metadata.decode(12, metadata.encode(12, value))
    assert decoded.brokers[1].host == value["brokers"][1]["host"]
    assert decoded.topics[0].topic_id == value["topics"][0]["topic_id"]
    assert isinstance(decoded.topics[0].topic_id, uuid.UUID)


def test_tagged_fields_are_written_only_when_not_default():
    fetch = RESPONSES[1]
    partition = {"partition_index": 0, "records": b""}
    plain = fetch.encode(12, {"responses": [{"topic": "t", "partitions": [partition]}]})
    with_default = fetch.encode(12, {"responses": [{"topic": "t", "partitions": [
        {**partition, "diverging_epoch": {"epoch": -1, "end_offset": -1}}]}]})
    with_value = fetch.encode(12, {"responses": [{"topic": "t", "partitions": [
        {**partition, "diverging_epoch": {"epoch": 4, "end_offset": 100}}]}]})
    assert plain == with_default
    assert len(with_value) > len(plain)
    decoded = fetch.decode(12, with_value).responses[0].partitions[0]
    assert decoded.diverging_epoch == {"epoch": 4, "end_offset": 100}
    assert decoded.current_leader == {"leader_id": -1, "leader_epoch": -1}


def test_unknown_tagged_fields_are_kept_and_written_back():
    api_versions = REQUESTS[18]
    value = {"client_software_name": "a", "client_software_version": "1", UNKNOWN_TAGS: {7: b"xyz", 2: b""}}
    encoded = api_versions.encode(3, value)
    assert encoded.endswith(b"\x02\x02\x00\x07\x03xyz")
    decoded = api_versions.decode(3, encoded)
    assert decoded[UNKNOWN_TAGS] == {2: b"", 7: b"xyz"}
    assert api_versions.encode(3, decoded) == encoded


def test_records_decode_to_a_view_of_the_frame_without_copying():
    produce = REQUESTS[0]
    batch = bytes(range(256)) * 4096
    frame = produce.encode(9, {"acks": 1, "timeout_ms": 5, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": batch}]}]})
    records = produce.decode(9, frame).topic_data[0].partition_data[0].records
    assert isinstance(records, memoryview)
    assert records.obj is frame
    assert records == batch


def test_records_of_a_large_bytearray_frame_are_a_view_of_it():
    produce = REQUESTS[0]
    batch = bytes(range(256)) * 4096
    frame = bytearray(produce.encode(9, {"topic_data": [{"name": "t", "partition_data": [{"records": batch}]}]}))
    assert len(frame) >= LARGE_FRAME
    records = produce.decode(9, frame).topic_data[0].partition_data[0].records
    assert records.obj is frame and records == batch
    frame[frame.index(batch)] ^= 0xFF  # the view sees changes to the frame: nothing was copied
    assert records[0] == batch[0] ^ 0xFF


def test_decode_from_an_offset_reads_the_body_there():
    heartbeat = REQUESTS[12]
    body = heartbeat.encode(4, {"group_id": "g", "generation_id": 3, "member_id": "m"})
    assert heartbeat.decode(4, b"junk" + body, 4).generation_id == 3


class FileSlice:
    """Stands in for the log's file slice: only its length is known to the codec."""

    def __init__(self, size):
        self.size = size

    def __len__(self):
        return self.size


def test_encode_chunks_keeps_non_bytes_records_as_their_own_elements():
    fetch = RESPONSES[1]
    slices = [FileSlice(1000), FileSlice(2000)]
    value = {"responses": [{"topic": "t", "partitions": [
        {"partition_index": 0, "records": slices[0]},
        {"partition_index": 1, "records": b"inline"},
        {"partition_index": 2, "records": slices[1]},
    ]}]}
    chunks = fetch.encode_chunks(11, value)
    assert [chunk for chunk in chunks if not isinstance(chunk, bytes)] == slices
    assert chunks[1] is slices[0] and chunks[3] is slices[1]
    assert chunks[0][-4:] == (1000).to_bytes(4, "big") and chunks[2][-4:] == (2000).to_bytes(4, "big")
    # Filling the slices with bytes of their length gives exactly what encode() gives.
    joined = b"".join(chunk if isinstance(chunk, bytes) else b"r" * len(chunk) for chunk in chunks)
    filled = {"responses": [{"topic": "t", "partitions": [
        {"partition_index": 0, "records": b"r" * 1000},
        {"partition_index": 1, "records": b"inline"},
        {"partition_index": 2, "records": b"r" * 2000},
    ]}]}
    assert joined == fetch.encode(11, filled)


def test_encode_chunks_of_bytes_only_is_one_element():
    fetch = RESPONSES[1]
    value = {"responses": [{"topic": "t", "partitions": [{"partition_index": 0, "records": b"abc"}]}]}
    assert fetch.encode_chunks(12, value) == [fetch.encode(12, value)]


@pytest.mark.parametrize("version", [0, 8, 9, 12], ids=lambda v: f"v{v}")
def test_a_struct_encoded_on_its_own_is_written_as_the_value_it_stands_for(version):
    """In place of its value, in compiled and interpreted code, flexible versions and not."""
    metadata = RESPONSES[3]
    topic = {"name": "t", "topic_id": uuid.uuid4(), "topic_authorized_operations": 8,
             "partitions": [{"partition_index": i, "leader_id": 1, "replica_nodes": [1], "isr_nodes": [1]}
                            for i in range(3)]}
    plain = {"brokers": [{"node_id": 1, "host": "h", "port": 9}], "topics": [topic, {"name": "other"}]}
    encoded = {**plain, "topics": [metadata.encode_struct(version, "topics[]", topic), {"name": "other"}]}
    assert metadata.encode(version, encoded) == metadata.encode(version, plain)
    assert metadata.struct(version).build(encoded) == metadata.encode(version, plain)
    partition = metadata.encode_struct(version, "topics[].partitions[]", topic["partitions"][0])
    assert metadata.encode(version, {"topics": [{**topic, "partitions": [partition]}]}) == \
        metadata.encode(version, {"topics": [{**topic, "partitions": topic["partitions"][:1]}]})


@pytest.mark.parametrize("path", ["topics", "brokers[].host", "nothing[]"])
def test_encode_struct_needs_the_path_of_a_struct(path):
    with pytest.raises(ValueError, match="has no struct at"):
        RESPONSES[3].encode_struct(12, path, {})


def test_plain_encode_refuses_a_non_bytes_records_value():
    value = {"responses": [{"topic": "t", "partitions": [{"partition_index": 0, "records": FileSlice(3)}]}]}
    with pytest.raises(ProtocolError, match=r"records.*encode_chunks"):
        RESPONSES[1].encode(11, value)


def test_null_and_empty_records_are_distinct():
    fetch = RESPONSES[1]
    for version in (11, 12):
        null = fetch.encode(version, {"responses": [{"topic": "t", "partitions": [{"records": None}]}]})
        empty = fetch.encode(version, {"responses": [{"topic": "t", "partitions": [{"records": b""}]}]})
        assert fetch.decode(version, null).responses[0].partitions[0].records is None
        assert fetch.decode(version, empty).responses[0].partitions[0].records == b""


@pytest.mark.parametrize("value, message", [
    ({"acks": 1 << 20}, r"ProduceRequest v9.*acks"),
    ({"topic_data": [{"name": None}]}, r"ProduceRequest v9: topic_data\[\]\.name: null"),
    ({"topic_data": [{"name": "t", "partition_data": [{"index": "zero"}]}]},
     r"ProduceRequest v9: topic_data\[\]\.partition_data\[\]\.index"),
    ({"topic_data": "not a list"}, r"ProduceRequest v9: topic_data"),
])
def test_values_that_cannot_be_encoded_raise_protocol_error_naming_the_field(value, message):
    with pytest.raises(ProtocolError, match=message):
        REQUESTS[0].encode(9, value)


def test_unsupported_versions_raise_protocol_error():
    with pytest.raises(ProtocolError, match="ProduceRequest: version 12 is not supported"):
        REQUESTS[0].decode(12, b"")
    with pytest.raises(ProtocolError, match="not supported"):
        RESPONSES[0].encode(-1, {})


def test_trailing_bytes_are_malformed():
    heartbeat = RESPONSES[12]
    with pytest.raises(ProtocolError, match="1 bytes left after the message"):
        heartbeat.decode(0, heartbeat.encode(0, {"error_code": 0}) + b"\x00")


def test_read_continues_on_a_frame_reader():
    heartbeat = RESPONSES[12]
    frame = heartbeat.encode(0, {"error_code": 3}) + heartbeat.encode(0, {"error_code": 4})
    reader = FrameReader(frame)
    assert [heartbeat.read(0, reader).error_code for _ in range(2)] == [3, 4]


def test_lookup_tables_cover_the_required_api_keys():
    required = {18, 3, 0, 1, 2, 22, 10, 11, 14, 12, 13, 8, 9, 15, 16, 42, 19, 20, 21, 32, 60, 23, 17, 36, 37, 44, 33,
                24, 25, 26, 28, 61, 65, 66}
    assert set(REQUESTS) == set(RESPONSES) >= required
    for api_key in REQUESTS:
        request, response = REQUESTS[api_key], RESPONSES[api_key]
        assert (request.api_key, response.api_key) == (api_key, api_key)
        assert request.name.endswith("Request") and response.name.endswith("Response")
        assert request.valid_versions == response.valid_versions
        assert request.flexible_versions == response.flexible_versions


@pytest.mark.parametrize("arguments, message", [
    (("class", "int8", "0+"), "not usable as a Python identifier"),
    (("name", "int24", "0+"), "unknown type 'int24'"),
    (("name", "Struct", "0+"), "struct types need fields"),
    (("name", "Struct", "0+", {"nullable": "0+", "fields": [field("a", "int8", "0+")]}), "nullable structs"),
    (("name", "int8", "0+", {"tag": 0}), "tag and tagged go together"),
])
def test_declaration_mistakes_are_refused(arguments, message):
    *positional, keywords = arguments if isinstance(arguments[-1], dict) else (*arguments, {})
    with pytest.raises(ValueError, match=message):
        field(*positional, **keywords)


def test_version_ranges():
    produce = REQUESTS[0]
    assert produce.valid_versions == (0, 11)
    low, high = produce.valid_versions
    assert (low, high) == (0, 11) and 11 in produce.valid_versions and 12 not in produce.valid_versions
    assert produce.flexible_versions == Versions(9, 0x7FFF)
    assert [produce.is_flexible(v) for v in (8, 9, 11, 20)] == [False, True, True, True]
    assert REQUESTS[17].flexible_versions is None and not REQUESTS[17].is_flexible(1)


def test_constructors_give_the_fields_and_the_encoder_defaults_the_rest_as_declared():
    from protocol.messages.produce import PRODUCE_RESPONSE
    partition = PRODUCE_RESPONSE.PartitionProduceResponse(index=2, error_code=3)
    assert partition == {"index": 2, "error_code": 3}
    message = PRODUCE_RESPONSE(responses=[PRODUCE_RESPONSE.TopicProduceResponse(name="t", partition_responses=[partition])])
    decoded = PRODUCE_RESPONSE.decode(10, PRODUCE_RESPONSE.encode(10, message))
    assert decoded.throttle_time_ms == 0
    [written] = decoded.responses[0].partition_responses
    assert (written.index, written.error_code, written.log_append_time_ms, written.error_message) == (2, 3, -1, None)
    assert written.current_leader.leader_id == -1 and written.record_errors == []


def test_a_misspelled_field_is_refused_when_encoded():
    from protocol.messages.produce import PRODUCE_RESPONSE
    typo = PRODUCE_RESPONSE(responses=[PRODUCE_RESPONSE.TopicProduceResponse(
        name="t", partition_responses=[PRODUCE_RESPONSE.PartitionProduceResponse(index=0, error_cod=3)])])
    with pytest.raises(ProtocolError, match=r"ProduceResponse.responses\[\].partition_responses\[\]: no version declares error_cod"):
        PRODUCE_RESPONSE.encode(9, typo)
    # A plain mapping that would go out with error 0 is refused too, by the compiled encoder and the interpreted one.
    plain = {"responses": [{"name": "t", "partition_responses": [{"index": 0, "error_cod": 3}]}]}
    with pytest.raises(ProtocolError, match="no version declares error_cod"):
        PRODUCE_RESPONSE.encode(9, plain)
    with pytest.raises(ProtocolError, match="no version declares error_cod"):
        PRODUCE_RESPONSE.struct(9).build(plain)
    # A field some other version declares is no typo: it is left out of this version.
    assert PRODUCE_RESPONSE.encode(0, PRODUCE_RESPONSE(responses=[], throttle_time_ms=5)) == b"\x00\x00\x00\x00"


def test_nested_struct_constructors_are_named_after_their_declared_types():
    from protocol.messages.produce import PRODUCE_RESPONSE
    leader = PRODUCE_RESPONSE.LeaderIdAndEpoch
    assert leader.__name__ == "LeaderIdAndEpoch" and leader.names >= {"leader_id", "leader_epoch"}
    assert leader.path == "ProduceResponse.responses[].partition_responses[].current_leader"
    with pytest.raises(AttributeError):
        PRODUCE_RESPONSE.Partition  # noqa: B018


def test_api_keys_are_named_after_their_requests():
    from protocol.messages import ApiKey
    assert {key: codec.name for key, codec in REQUESTS.items()} == {
        key: "".join(word.capitalize() for word in key.name.split("_")) + "Request" for key in ApiKey}
    assert ApiKey.OFFSET_FOR_LEADER_EPOCH == 23 and ApiKey.PRODUCE == 0


def test_a_struct_type_declared_twice_in_one_message_is_refused():
    from protocol.schema import response
    with pytest.raises(ValueError, match="struct type Shared is declared twice"):
        response(99, "TwiceResponse", "0", "none",
                 field("a", "[]Shared", "0", fields=(field("x", "int8", "0"),)),
                 field("b", "Outer", "0", fields=(field("c", "[]Shared", "0", fields=(field("y", "int8", "0"),)),)))


def test_a_struct_type_used_in_two_places_with_the_same_fields_has_one_constructor():
    # Kafka's commonStructs: AddPartitionsToTxn's topics in the v0-3 form and in the batched v4+ one.
    from protocol.messages.transactions import ADD_PARTITIONS_TO_TXN_REQUEST as request
    topic = request.AddPartitionsToTxnTopic(name="t", partitions=[0, 1])
    v3 = request(v3_and_below_transactional_id="txn", v3_and_below_producer_id=5, v3_and_below_producer_epoch=1,
                 v3_and_below_topics=[topic])
    v4 = request(transactions=[request.AddPartitionsToTxnTransaction(
        transactional_id="txn", producer_id=5, producer_epoch=1, topics=[topic])])
    assert request.decode(3, request.encode(3, v3)).v3_and_below_topics == [topic]
    assert request.decode(4, request.encode(4, v4)).transactions[0].topics == [topic]
    # Both places refuse a name the struct does not declare.
    typo = [{"name": "t", "partition": [0]}]
    with pytest.raises(ProtocolError, match=r"v3_and_below_topics\[\]: no version declares partition"):
        request.encode(3, {**v3, "v3_and_below_topics": typo})
    with pytest.raises(ProtocolError, match=r"transactions\[\].topics\[\]: no version declares partition"):
        request.encode(4, request(transactions=[{"transactional_id": "txn", "topics": typo}]))
