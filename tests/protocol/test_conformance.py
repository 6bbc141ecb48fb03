"""Conformance with Kafka's own message definitions (JSON).

Two sources: the definitions of the Kafka release this codec was written against
(../shared/kafka-protocol/message/, beside a clone of the project, when present), and the ones
kafka-python (a test dependency) ships in `kafka/protocol/schemas/resources`, always present.

Each declaration must match its JSON definition in the first source: same API key, valid and
flexible versions, and the same fields in the same order with the same names (snake_case),
types, versions, nullability, tags and defaults. Then, version by version, against both sources,
the construct built for that version must hold exactly the fields the definition gives for it,
with the right wire types (compact or not, nullable or not, tagged or positional). kafka-python's
definitions come from a newer Kafka, which dropped some old versions and added new ones; the
wire format of a version never changes, so every version both declare is compared.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import kafka
import pytest

from message_samples import ALL_VERSIONS, version_id
from protocol.headers import REQUEST_HEADER, RESPONSE_HEADER
from protocol.messages import MESSAGES
from protocol.primitives import FixedWidth, KafkaArray, KafkaBytes, KafkaString, KafkaType, Records, Uuid
from protocol.schema import NO_DEFAULT, Field, KafkaStruct, MessageCodec, Versions

SHARED_DEFINITIONS = Path(__file__).resolve().parents[3] / "shared" / "kafka-protocol" / "message"
KAFKA_PYTHON_DEFINITIONS = Path(kafka.__file__).parent / "protocol" / "schemas" / "resources"
FIXED_WIDTH_TYPES = {"b": "int8", "h": "int16", "i": "int32", "q": "int64", "H": "uint16", "I": "uint32",
                     "d": "float64", "?": "bool"}


@functools.cache
def load_definition(name: str, directory: Path = SHARED_DEFINITIONS) -> dict | None:
    """The definition of message `name` in `directory`; None where that source has none."""
    path = directory / f"{name}.json"
    if not path.is_file():
        return None
    # The files carry // comments; drop them, leaving string contents alone.
    text = re.sub(r'("(?:\\.|[^"\\])*")|//[^\n]*', lambda m: m.group(1) or "", path.read_text())
    definition = json.loads(text)
    inline_common_structs(definition["fields"], {s["name"]: s["fields"] for s in definition.get("commonStructs", [])})
    return definition


def inline_common_structs(specs: list[dict], common: dict[str, list[dict]]) -> None:
    """Gives each field whose type is one of the definition's commonStructs that struct's fields,
    as our declarations spell them out in every place the struct is used."""
    for spec in specs:
        struct_name = spec["type"].removeprefix("[]")
        if "fields" not in spec and struct_name in common:
            spec["fields"] = common[struct_name]
        inline_common_structs(spec.get("fields", []), common)


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def parse_default(spec: dict):
    if "default" not in spec:
        return NO_DEFAULT
    value = spec["default"]
    if not isinstance(value, str) or spec["type"] == "string" and value != "null":
        return value
    if value == "null":
        return None
    if value in ("true", "false"):
        return value == "true"
    return float(value) if spec["type"] == "float64" else int(value, 0)


def optional_versions(spec: dict, key: str) -> Versions | None:
    return Versions.parse(spec[key]) if key in spec else None


def assert_same_fields(ours: tuple[Field, ...], theirs: list[dict], where: str) -> None:
    assert [f.name for f in ours] == [snake_case(spec["name"]) for spec in theirs], where
    for f, spec in zip(ours, theirs):
        here = f"{where}.{f.name}"
        assert f.type == spec["type"], here
        assert f.versions == Versions.parse(spec["versions"]), here
        assert f.nullable == optional_versions(spec, "nullableVersions"), here
        assert f.tag == spec.get("tag"), here
        assert f.tagged == optional_versions(spec, "taggedVersions"), here
        assert f.default == parse_default(spec), here
        assert f.flexible == spec.get("flexibleVersions"), here
        assert_same_fields(f.fields, spec.get("fields", []), here)


CODECS = MESSAGES + (REQUEST_HEADER, RESPONSE_HEADER)


@pytest.mark.skipif(not SHARED_DEFINITIONS.is_dir(),
                    reason=f"no {SHARED_DEFINITIONS}; each version's wire format is still checked against "
                           f"kafka-python's definitions")
@pytest.mark.parametrize("codec", CODECS, ids=lambda codec: codec.name)
def test_declaration_matches_the_definition(codec: MessageCodec):
    definition = load_definition(codec.name)
    assert definition["name"] == codec.name
    assert definition["type"] == codec.kind
    assert definition.get("apiKey") == codec.api_key
    assert codec.valid_versions == Versions.parse(definition["validVersions"])
    assert codec.flexible_versions == Versions.parse(definition["flexibleVersions"])
    assert_same_fields(codec.fields, definition["fields"], codec.name)


def wire_type(kind: KafkaType) -> tuple:
    """What goes on the wire for a construct, in the definition's vocabulary."""
    if isinstance(kind, FixedWidth):
        return (FIXED_WIDTH_TYPES[kind.format_char],)
    if isinstance(kind, Uuid):
        return ("uuid",)
    if isinstance(kind, (KafkaString, KafkaBytes)):
        name = "records" if isinstance(kind, Records) else "string" if isinstance(kind, KafkaString) else "bytes"
        return (name, kind.compact, kind.nullable)
    if isinstance(kind, KafkaArray):
        return ("array", kind.compact, kind.nullable, wire_type(kind.element))
    assert isinstance(kind, KafkaStruct)
    return ("struct", kind.flexible, tuple((f.name, f.tag, wire_type(f.kind)) for f in kind.fields))


def expected_wire_type(spec: dict, version: int, flexible: bool, element: bool = False) -> tuple:
    type_name = spec["type"]
    if type_name.startswith("[]") and not element:
        compact = flexible and expected_compact(spec, version)
        return ("array", compact, nullable_in(spec, version), expected_wire_type(spec, version, flexible, True))
    type_name = type_name.removeprefix("[]")
    if "fields" in spec:
        return expected_struct(spec["fields"], version, flexible)
    if type_name in ("string", "bytes", "records"):
        nullable = nullable_in(spec, version) and not element
        return (type_name, flexible and expected_compact(spec, version), nullable)
    return (type_name,)


def expected_compact(spec: dict, version: int) -> bool:
    return "flexibleVersions" not in spec or version in (Versions.parse(spec["flexibleVersions"]) or ())


def nullable_in(spec: dict, version: int) -> bool:
    return "nullableVersions" in spec and version in Versions.parse(spec["nullableVersions"])


def expected_struct(specs: list[dict], version: int, flexible: bool) -> tuple:
    fields = []
    for spec in specs:
        if version not in Versions.parse(spec["versions"]):
            continue
        tagged = flexible and "taggedVersions" in spec and version in Versions.parse(spec["taggedVersions"])
        fields.append((snake_case(spec["name"]), spec["tag"] if tagged else None,
                       expected_wire_type(spec, version, flexible)))
    return ("struct", flexible, tuple(fields))


def flexible_in(definition: dict, version: int) -> bool:
    return version in (Versions.parse(definition["flexibleVersions"]) or ())


def cases_defined_in(directory: Path) -> list:
    """Every (codec, version) we declare that the definitions in `directory` define too."""
    every = ALL_VERSIONS + [(REQUEST_HEADER, v) for v in range(3)] + [(RESPONSE_HEADER, v) for v in range(2)]
    return [(codec, version, directory) for codec, version in every
            if (definition := load_definition(codec.name, directory)) is not None
            and version in Versions.parse(definition["validVersions"])]


def case_id(case) -> str:
    codec, version, directory = case
    return f"{version_id((codec, version))}-{'shared' if directory == SHARED_DEFINITIONS else 'kafka-python'}"


KAFKA_PYTHON_CASES = cases_defined_in(KAFKA_PYTHON_DEFINITIONS)


def test_kafka_python_defines_most_of_what_we_declare():
    # A guard against the fallback source silently covering nothing (a moved resources folder).
    assert len(KAFKA_PYTHON_CASES) >= len(ALL_VERSIONS) // 2


@pytest.mark.parametrize("case", cases_defined_in(SHARED_DEFINITIONS) + KAFKA_PYTHON_CASES, ids=case_id)
def test_construct_of_each_version_matches_the_definition(case):
    codec, version, directory = case
    definition = load_definition(codec.name, directory)
    assert wire_type(codec.struct(version)) == expected_struct(definition["fields"], version,
                                                               flexible_in(definition, version))
