"""Values for every declared message and version, generated from the declarations.

``sample(codec, version, full=True)`` fills every field of that version with a non-default
value (non-null, two-element arrays, tagged fields present); ``full=False`` makes every
nullable field null, every array empty and leaves tagged fields out. ``strategy(codec, version)``
draws random values with hypothesis. ``expected(codec, version, value)`` is what decoding the
encoded value must give: the fields of that version, missing ones at their default.
"""

from __future__ import annotations

import uuid
from typing import Any

from hypothesis import strategies as st

from protocol.messages import MESSAGES
from protocol.schema import Field, MessageCodec

INT_RANGES = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}
UNSIGNED_RANGES = {"uint16": 16, "uint32": 32}

ALL_VERSIONS = [(codec, version) for codec in MESSAGES
                for version in range(codec.valid_versions.low, codec.valid_versions.high + 1)]


def version_id(case: tuple[MessageCodec, int]) -> str:
    return f"{case[0].name}-v{case[1]}"


def _present(fields: tuple[Field, ...], version: int) -> list[Field]:
    return [f for f in fields if version in f.versions]


def _is_tagged(f: Field, codec: MessageCodec, version: int) -> bool:
    return codec.is_flexible(version) and f.tagged is not None and version in f.tagged


def _leaf_sample(type_name: str, seed: int) -> Any:
    seed %= 50
    if type_name in INT_RANGES:
        bits = INT_RANGES[type_name]
        return (1 << (bits - 1)) - 1 - seed if seed % 2 else -(1 << (bits - 1)) + seed
    if type_name in UNSIGNED_RANGES:
        return (1 << UNSIGNED_RANGES[type_name]) - 1 - seed
    # Every other value is long enough to need a two-byte compact length.
    repeat = 1 + 40 * (seed % 2)
    return {
        "bool": True,
        "float64": 2.5 + seed,
        "string": f"str-{seed}-é" * repeat,
        "bytes": bytes([seed]) * 3 * repeat,
        "records": b"records-" + bytes([seed]) * 5 * repeat,
        "uuid": uuid.UUID(int=0x1234_5678_9ABC + seed),
    }[type_name]


def _struct_sample(codec: MessageCodec, fields: tuple[Field, ...], version: int, full: bool, seed: int) -> dict:
    value: dict[str, Any] = {}
    for index, f in enumerate(_present(fields, version)):
        seed_here = seed * 31 + index
        if not full and _is_tagged(f, codec, version):
            continue
        if not full and f.nullable is not None and version in f.nullable:
            value[f.name] = None
        elif f.is_array:
            count = 2 if full else 0
            value[f.name] = [
                _struct_sample(codec, f.fields, version, full, seed_here + i) if f.fields
                else _leaf_sample(f.type[2:], seed_here + i)
                for i in range(count)]
        elif f.fields:
            value[f.name] = _struct_sample(codec, f.fields, version, full, seed_here)
        else:
            value[f.name] = _leaf_sample(f.type, seed_here) if full else f.default_value(version)
    return value


def sample(codec: MessageCodec, version: int, full: bool = True) -> dict:
    return _struct_sample(codec, codec.fields, version, full, 1)


def _leaf_strategy(type_name: str) -> st.SearchStrategy:
    if type_name in INT_RANGES:
        bits = INT_RANGES[type_name]
        return st.integers(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
    if type_name in UNSIGNED_RANGES:
        return st.integers(0, (1 << UNSIGNED_RANGES[type_name]) - 1)
    return {
        "bool": st.booleans(),
        "float64": st.floats(allow_nan=False),
        "string": st.text(st.characters(blacklist_categories=("Cs",)), max_size=6),
        "bytes": st.binary(max_size=6),
        "records": st.binary(max_size=12),
        "uuid": st.uuids(),
    }[type_name]


def _struct_strategy(codec: MessageCodec, fields: tuple[Field, ...], version: int) -> st.SearchStrategy:
    required, optional = {}, {}
    for f in _present(fields, version):
        if f.is_array:
            element = _struct_strategy(codec, f.fields, version) if f.fields else _leaf_strategy(f.type[2:])
            kind = st.lists(element, max_size=2)
        elif f.fields:
            kind = _struct_strategy(codec, f.fields, version)
        else:
            kind = _leaf_strategy(f.type)
        if f.nullable is not None and version in f.nullable:
            kind = st.none() | kind
        # Tagged fields and fields with a usable default may be left out.
        (optional if _is_tagged(f, codec, version) else required)[f.name] = kind
    return st.fixed_dictionaries(required, optional=optional)


def strategy(codec: MessageCodec, version: int) -> st.SearchStrategy:
    return _struct_strategy(codec, codec.fields, version)


def _expected_struct(fields: tuple[Field, ...], version: int, value: dict) -> dict:
    result = {}
    for f in _present(fields, version):
        item = value.get(f.name, f.default_value(version))
        if f.fields and item is not None:
            if f.is_array:
                item = [_expected_struct(f.fields, version, element) for element in item]
            else:
                item = _expected_struct(f.fields, version, item)
        result[f.name] = item
    return result


def expected(codec: MessageCodec, version: int, value: dict) -> dict:
    return _expected_struct(codec.fields, version, value)
