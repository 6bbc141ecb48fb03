"""Cross-check with kafka-python 3.x, an independent implementation of the same messages.

kafka-python has JSON-driven message classes (``kafka.protocol.{metadata,consumer,producer,
admin,sasl}``) for recent versions and hand-written per-version classes (``kafka.protocol.old``)
for older ones. For every message and version either can handle: kafka-python's bytes decode
with ours to the same values, ours decode with kafka-python to the same values, and both
encode the same values to the same bytes. Fields are matched by position (and tagged fields by
tag), so kafka-python's occasional renames do not matter.
"""

from __future__ import annotations

from io import BytesIO

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from message_samples import ALL_VERSIONS, sample, strategy, version_id
from protocol.messages import ApiKey
from protocol.primitives import ZERO_UUID
from protocol.schema import Field, MessageCodec

pytest.importorskip("kafka.protocol")
from kafka.protocol.old import types as old_types  # noqa: E402

from kafka_python_classes import OLD_CLASSES, json_class  # noqa: E402

JSON_CASES = [case for case in ALL_VERSIONS if json_class(case[0].name, case[1])]
OLD_CASES = [case for case in ALL_VERSIONS
             if not json_class(case[0].name, case[1]) and (case[0].name, case[1]) in OLD_CLASSES]


def _ours(fields: tuple[Field, ...], codec: MessageCodec, version: int) -> tuple[list[Field], dict[int, Field]]:
    present = [f for f in fields if version in f.versions]
    flexible = codec.is_flexible(version)
    tagged = {f.tag: f for f in present if flexible and f.tagged is not None and version in f.tagged}
    return [f for f in present if f.tag not in tagged or f.tagged is None], tagged


def _signed32(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


# --- JSON-driven classes ---------------------------------------------------------------------

def _to_json_value(theirs, ours: Field, codec: MessageCodec, version: int, value):
    if value is None:
        return None
    if theirs.is_struct_array():
        return [_to_json_struct(theirs, theirs.data_class, ours.fields, codec, version, item) for item in value]
    if theirs.is_struct():
        return _to_json_struct(theirs, theirs.data_class, ours.fields, codec, version, value)
    if theirs.type_str == "bitfield":
        bits = old_types.BitField.from_32_bit_field(value & 0xFFFFFFFF)
        return None if bits == {31} else bits
    if theirs.type_str == "records":
        return bytes(value)
    return value


def _to_json_struct(theirs, data_class, fields, codec, version, value, **extra):
    positional, tagged = _ours(fields, codec, version)
    kwargs = {}
    for their_field, our_field in zip(theirs.untagged_fields(version), positional, strict=True):
        kwargs[their_field.name] = _to_json_value(their_field, our_field, codec, version,
                                                  value.get(our_field.name, our_field.default_value(version)))
    their_tagged = theirs.tagged_fields(version)._tags if codec.is_flexible(version) else {}
    assert set(their_tagged) == set(tagged)
    for tag, our_field in tagged.items():
        default = our_field.default_value(version)
        if value.get(our_field.name, default) != default:
            kwargs[their_tagged[tag].name] = _to_json_value(their_tagged[tag], our_field, codec, version,
                                                            value[our_field.name])
    return data_class(version=version, **kwargs, **extra)


def _from_json_value(theirs, ours: Field, codec: MessageCodec, version: int, value):
    if theirs.is_struct_array():
        return None if value is None else [_from_json_struct(theirs, ours.fields, codec, version, v) for v in value]
    if theirs.is_struct():
        return ours.default_value(version) if value is None else _from_json_struct(theirs, ours.fields, codec,
                                                                                   version, value)
    if theirs.type_str == "bitfield":
        return -(1 << 31) if value is None else _signed32(old_types.BitField.to_32_bit_field(value))
    if theirs.type_str == "uuid" and value is None:
        return ZERO_UUID
    return value


def _from_json_struct(theirs, fields, codec, version, obj) -> dict:
    positional, tagged = _ours(fields, codec, version)
    values = {}
    for their_field, our_field in zip(theirs.untagged_fields(version), positional, strict=True):
        values[our_field.name] = _from_json_value(their_field, our_field, codec, version,
                                                  getattr(obj, their_field.name))
    their_tagged = theirs.tagged_fields(version)._tags if codec.is_flexible(version) else {}
    for tag, our_field in tagged.items():
        values[our_field.name] = _from_json_value(their_tagged[tag], our_field, codec, version,
                                                  getattr(obj, their_tagged[tag].name))
    return {f.name: values[f.name] for f in fields if f.name in values}


def _without_api_versions_error(codec: MessageCodec, value: dict) -> dict:
    if codec.api_key == ApiKey.API_VERSIONS and codec.kind == "response":
        # kafka-python reads any ApiVersions response with an error as v0, as the broker sends it.
        value["error_code"] = 0
    return value


@pytest.mark.parametrize("case", JSON_CASES, ids=version_id)
@pytest.mark.parametrize("full", [True, False], ids=["full", "sparse"])
def test_same_bytes_and_values_as_kafka_python_json_classes(case, full):
    codec, version = case
    cls = json_class(codec.name, version)
    value = _without_api_versions_error(codec, sample(codec, version, full))
    ours = codec.encode(version, value)

    theirs = bytes(_to_json_struct(cls._struct, cls[version], codec.fields, codec, version, value).encode())
    assert ours == theirs

    decoded_by_them = cls.decode(ours, version=version)
    assert codec.decode(version, theirs) == _from_json_struct(cls._struct, codec.fields, codec, version,
                                                              decoded_by_them)


@pytest.mark.parametrize("cls", sorted({json_class(c.name, v) for c, v in JSON_CASES}, key=lambda cls: cls.name),
                         ids=lambda cls: cls.name)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_values_match_kafka_python_json_classes(cls, data):
    codec, version = data.draw(st.sampled_from([case for case in JSON_CASES if case[0].name == cls.name]))
    value = _without_api_versions_error(codec, data.draw(strategy(codec, version)))
    ours = codec.encode(version, value)
    assert ours == bytes(_to_json_struct(cls._struct, cls[version], codec.fields, codec, version, value).encode())
    assert codec.decode(version, ours) == _from_json_struct(cls._struct, codec.fields, codec, version,
                                                            cls.decode(ours, version=version))


# --- hand-written per-version classes --------------------------------------------------------

def _to_old(kind, ours: Field, codec: MessageCodec, version: int, value):
    if value is None:
        return None
    if isinstance(kind, old_types.Array):
        element = kind.array_of
        if isinstance(element, old_types.Schema):
            return [_to_old_struct(element, ours.fields, codec, version, item) for item in value]
        return list(value)
    if kind is old_types.BitField:
        bits = old_types.BitField.from_32_bit_field(value & 0xFFFFFFFF)
        return None if bits == {31} else bits
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def _to_old_struct(schema, fields, codec, version, value) -> tuple:
    positional, _ = _ours(fields, codec, version)
    kinds = [kind for kind in schema.fields if kind is not old_types.TaggedFields]
    return tuple(_to_old(kind, our_field, codec, version, value.get(our_field.name, our_field.default_value(version)))
                 for kind, our_field in zip(kinds, positional, strict=True))


def _from_old(kind, ours: Field, codec: MessageCodec, version: int, value):
    if isinstance(kind, old_types.Array) and isinstance(kind.array_of, old_types.Schema) and value is not None:
        return [_from_old_struct(kind.array_of, ours.fields, codec, version, item) for item in value]
    if kind is old_types.BitField:
        return -(1 << 31) if value is None else _signed32(old_types.BitField.to_32_bit_field(value))
    return value


def _from_old_struct(schema, fields, codec, version, values) -> dict:
    positional, _ = _ours(fields, codec, version)
    kinds = [kind for kind in schema.fields if kind is not old_types.TaggedFields]
    return {our_field.name: _from_old(kind, our_field, codec, version, item)
            for kind, our_field, item in zip(kinds, positional, values)}


@pytest.mark.parametrize("case", OLD_CASES, ids=version_id)
@pytest.mark.parametrize("full", [True, False], ids=["full", "sparse"])
def test_same_bytes_and_values_as_kafka_python_old_classes(case, full):
    codec, version = case
    cls = OLD_CLASSES[(codec.name, version)]
    value = sample(codec, version, full)
    ours = codec.encode(version, value)

    theirs = cls(*_to_old_struct(cls.SCHEMA, codec.fields, codec, version, value)).encode()
    assert ours == theirs

    decoded_by_them = cls.SCHEMA.decode(BytesIO(ours))
    assert codec.decode(version, theirs) == _from_old_struct(cls.SCHEMA, codec.fields, codec, version,
                                                             decoded_by_them)


def test_every_message_is_cross_checked_in_some_version():
    checked = {codec.name for codec, _ in JSON_CASES + OLD_CASES}
    assert checked == {codec.name for codec, _ in ALL_VERSIONS}
