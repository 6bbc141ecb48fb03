"""ACLs: Kafka's filter matching and the bindings it refuses (broker/acls.py), the authorizer's
file in the data directory, and DescribeAcls / CreateAcls / DeleteAcls at every version over a
socket to a broker served in the test (broker/handlers/acls.py)."""

from __future__ import annotations

import json

import pytest

from broker.acls import (
    ACLS_FILE, AUTHORIZER_CLASS_NAMES, AccessControlEntry, AclBinding, AclBindingFilter, AclPermissionType, Authorizer,
    PatternType, ResourcePattern, ResourceType, check_filter, check_new_binding, from_code,
)
from broker.authorized_operations import AclOperation
from broker.config import BrokerConfig, parse_config
from broker.metadata import MetadataError
from broker.server import Broker
from protocol.errors import ApiError, ErrorCode
from protocol.messages import ApiKey
from wire_client import WireClient

STANDARD = AUTHORIZER_CLASS_NAMES[0]
ANY, MATCH, LITERAL, PREFIXED = PatternType.ANY, PatternType.MATCH, PatternType.LITERAL, PatternType.PREFIXED
TOPIC, GROUP = ResourceType.TOPIC, ResourceType.GROUP
READ, WRITE = AclOperation.READ, AclOperation.WRITE
ALLOW, DENY = AclPermissionType.ALLOW, AclPermissionType.DENY


def binding(name: str, pattern_type: PatternType = LITERAL, *, resource_type: ResourceType = TOPIC,
            principal: str = "User:alice", host: str = "*", operation: AclOperation = READ,
            permission_type: AclPermissionType = ALLOW) -> AclBinding:
    return AclBinding(ResourcePattern(resource_type, name, pattern_type),
                      AccessControlEntry(principal, host, operation, permission_type))


def acl_filter(name: str | None, pattern_type: PatternType = ANY, *, resource_type: ResourceType = ResourceType.ANY,
               principal: str | None = None, host: str | None = None, operation: AclOperation = AclOperation.ANY,
               permission_type: AclPermissionType = AclPermissionType.ANY) -> AclBindingFilter:
    return AclBindingFilter(resource_type, name, pattern_type, principal, host, operation, permission_type)


# Kafka's examples (PatternType.MATCH's documentation): what applies to the topic payments.received.
STORED = {
    "literal": binding("payments.received"),
    "wildcard": binding("*"),
    "prefix": binding("payments.", PREFIXED),
    "longer prefix": binding("payments.received.eu", PREFIXED),
    "other prefix": binding("pay-", PREFIXED),
    "prefix named like the topic": binding("payments.received", PREFIXED),
    "group of that name": binding("payments.received", resource_type=GROUP),
}


@pytest.mark.parametrize("matching, expected", [
    (acl_filter("payments.received", MATCH, resource_type=TOPIC),
     {"literal", "wildcard", "prefix", "prefix named like the topic"}),
    (acl_filter("payments.received", LITERAL), {"literal", "group of that name"}),
    (acl_filter("payments.received", PREFIXED), {"prefix named like the topic"}),
    (acl_filter("payments.received", ANY), {"literal", "prefix named like the topic", "group of that name"}),
    (acl_filter("payments.received", ANY, resource_type=GROUP), {"group of that name"}),
    # The wildcard is a literal name: a literal filter of it selects the wildcard bindings only.
    (acl_filter("*", LITERAL), {"wildcard"}),
    (acl_filter("*", MATCH), {"wildcard"}),
    (acl_filter(None, PREFIXED), {"prefix", "longer prefix", "other prefix", "prefix named like the topic"}),
    (acl_filter(None, MATCH, resource_type=TOPIC), set(STORED) - {"group of that name"}),
    (acl_filter(None), set(STORED)),
], ids=lambda value: f"{value.resource_type.name}-{value.pattern_type.name}-{value.name}"
    if isinstance(value, AclBindingFilter) else "")
def test_resource_patterns_match_as_in_kafka(matching, expected):
    assert {label for label, stored in STORED.items() if matching.matches(stored)} == expected


def test_access_control_entries_match_as_in_kafka():
    stored = binding("t", principal="User:alice", host="10.0.0.1", operation=WRITE, permission_type=DENY)
    assert acl_filter("t").matches(stored)
    assert acl_filter("t", principal="User:alice", host="10.0.0.1", operation=WRITE, permission_type=DENY).matches(stored)
    for mismatch in ({"principal": "User:bob"}, {"principal": "alice"}, {"host": "*"}, {"operation": READ},
                     {"operation": AclOperation.ALL}, {"permission_type": ALLOW}):
        assert not acl_filter("t", **mismatch).matches(stored), mismatch
    # In filters, User:* and * are plain values: they select the bindings for every user and host.
    everyone = binding("t", principal="User:*")
    assert acl_filter("t", principal="User:*").matches(everyone)
    assert not acl_filter("t", principal="User:*").matches(stored)


def test_codes_kafka_does_not_know_are_unknown():
    assert from_code(ResourceType, 7) == ResourceType.USER
    for kind in (ResourceType, PatternType, AclOperation, AclPermissionType):
        assert from_code(kind, 99) == from_code(kind, -1) == kind.UNKNOWN


@pytest.mark.parametrize("refused, message", [
    (binding("my-cluster", resource_type=ResourceType.CLUSTER),
     "The only valid name for the CLUSTER resource is kafka-cluster"),
    (binding(""), "Invalid empty resource name"),
    (binding("t", resource_type=ResourceType.ANY), "Invalid resourceType ANY"),
    (binding("t", resource_type=ResourceType.UNKNOWN), "Invalid resourceType UNKNOWN"),
    (binding("t", MATCH), "Invalid patternType MATCH"),
    (binding("t", ANY), "Invalid patternType ANY"),
    (binding("t", PatternType.UNKNOWN), "Invalid patternType UNKNOWN"),
    (binding("t", operation=AclOperation.ANY), "Invalid operation ANY"),
    (binding("t", operation=AclOperation.UNKNOWN), "Invalid operation UNKNOWN"),
    (binding("t", permission_type=AclPermissionType.ANY), "Invalid permissionType ANY"),
    (binding("t", permission_type=AclPermissionType.UNKNOWN), "Invalid permissionType UNKNOWN"),
    (binding("t", principal="alice"), "Could not parse principal from `alice` (no colon is present separating "
                                      "the principal type from the principal name)"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_bindings_kafka_refuses_to_create(refused, message):
    with pytest.raises(ApiError) as refusal:
        check_new_binding(refused)
    assert (refusal.value.code, refusal.value.message) == (ErrorCode.INVALID_REQUEST, message)


@pytest.mark.parametrize("accepted", [
    binding("kafka-cluster", resource_type=ResourceType.CLUSTER, operation=AclOperation.ALTER),
    binding("*", principal="User:*", operation=AclOperation.ALL),
    binding("*", PREFIXED),
    binding("tx-", PREFIXED, resource_type=ResourceType.TRANSACTIONAL_ID, operation=WRITE, permission_type=DENY),
    binding("bob", resource_type=ResourceType.USER, operation=AclOperation.DESCRIBE_TOKENS, principal="Group:ops"),
    binding("token-1", resource_type=ResourceType.DELEGATION_TOKEN, principal="User:", host="10.0.0.1"),
])
def test_bindings_kafka_creates(accepted):
    check_new_binding(accepted)


def test_filters_with_unknown_types_are_refused():
    for unknown, message in ({"resource_type": ResourceType.UNKNOWN}, "Unknown patternFilter."), \
                            ({"pattern_type": PatternType.UNKNOWN}, "Unknown patternFilter."), \
                            ({"operation": AclOperation.UNKNOWN}, "Unknown entryFilter."), \
                            ({"permission_type": AclPermissionType.UNKNOWN}, "Unknown entryFilter."):
        fields = {"name": None, "pattern_type": ANY, **unknown}
        with pytest.raises(ApiError) as refusal:
            check_filter(acl_filter(**fields))
        assert (refusal.value.code, refusal.value.message) == (ErrorCode.INVALID_REQUEST, message)
    check_filter(acl_filter(None, MATCH))


async def test_the_authorizer_keeps_its_acls_across_reopening(tmp_path):
    authorizer = Authorizer.open(tmp_path)
    first, second, third = binding("a"), binding("b", PREFIXED), binding("c", operation=WRITE)
    await authorizer.create_acls([first, second, first])
    await authorizer.create_acls([third, second])  # one already there: a success that adds nothing
    assert authorizer.acls(acl_filter(None)) == [first, second, third]
    assert Authorizer.open(tmp_path).acls(acl_filter(None)) == [first, second, third]

    # Each filter answers what it matched before any was removed, as Kafka's controller does.
    assert await authorizer.delete_acls([acl_filter(None, operation=READ), acl_filter("a"), acl_filter("nothing")]) == [
        [first, second], [first], []]
    assert authorizer.acls(acl_filter(None)) == [third]
    assert Authorizer.open(tmp_path).acls(acl_filter(None)) == [third]


async def test_an_acl_change_that_cannot_be_written_changes_nothing(tmp_path):
    authorizer = Authorizer.open(tmp_path)
    await authorizer.create_acls([binding("kept")])
    (tmp_path / ACLS_FILE).unlink()
    (tmp_path / ACLS_FILE / "in-the-way").mkdir(parents=True)  # the file cannot replace a directory
    for change in (lambda: authorizer.create_acls([binding("new")]), lambda: authorizer.delete_acls([acl_filter(None)])):
        with pytest.raises(ApiError) as failure:
            await change()
        assert failure.value.code == ErrorCode.KAFKA_STORAGE_ERROR
    assert authorizer.acls(acl_filter(None)) == [binding("kept")]
    assert [path.name for path in tmp_path.iterdir()] == [ACLS_FILE]  # no temporary file left


GOOD = {"resource_type": "TOPIC", "resource_name": "t", "pattern_type": "LITERAL", "principal": "User:a",
        "host": "*", "operation": "READ", "permission_type": "ALLOW"}


@pytest.mark.parametrize("text, problem", [
    ('{"version": 1, "acls": [', "JSONDecodeError"),
    ("[]", "TypeError"),
    ('{"version": 2, "acls": []}', "unknown version 2"),
    (json.dumps({"version": 1, "acls": [{**GOOD, "operation": "FLY"}]}), "KeyError: 'FLY'"),
    (json.dumps({"version": 1, "acls": [{**GOOD, "host": None}]}), "host is not a string"),
    (json.dumps({"version": 1, "acls": [{**GOOD, "pattern_type": "MATCH"}]}), "Invalid patternType MATCH"),
    (json.dumps({"version": 1, "acls": [{k: v for k, v in GOOD.items() if k != "principal"}]}), "'principal'"),
], ids=["truncated", "not-an-object", "version", "operation", "host", "pattern-type", "missing-field"])
def test_a_damaged_acls_file_is_refused_at_start(tmp_path, text, problem):
    (tmp_path / ACLS_FILE).write_text(text)
    with pytest.raises(MetadataError, match="unreadable ACLs") as refusal:
        Authorizer.open(tmp_path)
    assert str(tmp_path / ACLS_FILE) in str(refusal.value) and problem in str(refusal.value)


async def test_the_broker_refuses_to_open_a_data_directory_with_damaged_acls(tmp_path):
    (tmp_path / ACLS_FILE).write_text("not json")
    with pytest.raises(MetadataError, match="unreadable ACLs"):
        async with Broker(BrokerConfig(port=0, data_dir=tmp_path, authorizer_class_name=STANDARD)):
            pass
    # Without an authorizer the file is not read (and stays as it is for when one is configured again).
    async with Broker(BrokerConfig(port=0, data_dir=tmp_path)) as broker:
        assert broker.authorizer is None
    assert (tmp_path / ACLS_FILE).read_text() == "not json"


def test_the_authorizer_is_kafkas_standard_one_or_none(capsys):
    for name in AUTHORIZER_CLASS_NAMES:
        assert parse_config(["--authorizer-class-name", name], environ={}).authorizer_class_name == name
    assert parse_config([], environ={"COMLOG_AUTHORIZER_CLASS_NAME": ""}).authorizer_class_name == ""
    with pytest.raises(SystemExit) as exit_:
        parse_config(["--authorizer-class-name", "com.example.MyAuthorizer"], environ={})
    assert exit_.value.code == 2
    assert "--authorizer-class-name: unknown authorizer 'com.example.MyAuthorizer'" in capsys.readouterr().err


# Over a socket, at every version.

VERSIONS = [0, 1, 2, 3]


@pytest.fixture
def broker_config(tmp_path):
    # The anonymous socket client administers the ACLs: it must be allowed to.
    return BrokerConfig(port=0, data_dir=tmp_path / "data", authorizer_class_name=STANDARD,
                        super_users=("User:ANONYMOUS",))


def creation(name: str, pattern_type: int = LITERAL, *, resource_type: int = TOPIC, principal: str = "User:alice",
             operation: int = READ, permission_type: int = ALLOW) -> dict:
    return {"resource_type": resource_type, "resource_name": name, "resource_pattern_type": pattern_type,
            "principal": principal, "host": "*", "operation": operation, "permission_type": permission_type}


def wire_filter(name: str | None, pattern_type: int = ANY, *, resource_type: int = ResourceType.ANY,
                operation: int = AclOperation.ANY, permission_type: int = AclPermissionType.ANY) -> dict:
    return {"resource_type_filter": resource_type, "resource_name_filter": name, "pattern_type_filter": pattern_type,
            "principal_filter": None, "host_filter": None, "operation": operation, "permission_type": permission_type}


def outcomes(results) -> list:
    return [(result.error_code, result.error_message) for result in results]


async def describe(client, version: int, body: dict) -> list[tuple]:
    response = await client.request(ApiKey.DESCRIBE_ACLS, version, body)
    assert (response.error_code, response.error_message) == (ErrorCode.NONE, None)
    return [(r.resource_type, r.resource_name, r.get("pattern_type", LITERAL),
             [(a.principal, a.host, a.operation, a.permission_type) for a in r.acls]) for r in response.resources]


@pytest.mark.parametrize("version", VERSIONS)
async def test_acls_created_described_and_deleted(client, version):
    created = await client.request(ApiKey.CREATE_ACLS, version, {"creations": [
        creation("orders"), creation("orders", principal="User:bob", operation=WRITE), creation("*"),
        creation("orders"), creation("", principal="User:bob")]})
    assert outcomes(created.results) == [(ErrorCode.NONE, None)] * 4 + [
        (ErrorCode.INVALID_REQUEST, "Invalid empty resource name")]
    if version > 0:
        created = await client.request(ApiKey.CREATE_ACLS, version, {"creations": [creation("ord", PREFIXED)]})
        assert outcomes(created.results) == [(ErrorCode.NONE, None)]

    # One resource per pattern, with its ACLs; at v0 a filter is literal, and so is what it selects.
    described = await describe(client, version, wire_filter("orders", MATCH if version else LITERAL,
                                                            resource_type=TOPIC))
    assert described == [
        (TOPIC, "orders", LITERAL, [("User:alice", "*", READ, ALLOW), ("User:bob", "*", WRITE, ALLOW)]),
        *([(TOPIC, "*", LITERAL, [("User:alice", "*", READ, ALLOW)])] if version else []),
        *([(TOPIC, "ord", PREFIXED, [("User:alice", "*", READ, ALLOW)])] if version else [])]

    deleted = await client.request(ApiKey.DELETE_ACLS, version, {"filters": [
        wire_filter("orders", LITERAL if version == 0 else ANY), wire_filter("*", LITERAL, operation=WRITE),
        wire_filter(None, resource_type=ResourceType.UNKNOWN)]})
    assert outcomes(deleted.filter_results) == [(ErrorCode.NONE, None)] * 2 + [
        (ErrorCode.INVALID_REQUEST, "Unknown patternFilter.")]
    assert [(m.resource_name, m.get("pattern_type", LITERAL), m.principal, m.error_code)
            for m in deleted.filter_results[0].matching_acls] == [
        ("orders", LITERAL, "User:alice", ErrorCode.NONE), ("orders", LITERAL, "User:bob", ErrorCode.NONE)]
    assert deleted.filter_results[1].matching_acls == []
    assert await describe(client, version, wire_filter("orders", LITERAL)) == []


@pytest.mark.parametrize("version", VERSIONS)
async def test_codes_kafka_does_not_know_are_invalid_requests(client, version):
    created = await client.request(ApiKey.CREATE_ACLS, version, {"creations": [
        creation("t", resource_type=0), creation("t", resource_type=42), creation("t", operation=AclOperation.ANY),
        creation("t", permission_type=-3), creation("t")]})
    assert outcomes(created.results) == [
        (ErrorCode.INVALID_REQUEST, "Invalid resourceType UNKNOWN"), (ErrorCode.INVALID_REQUEST, "Invalid resourceType UNKNOWN"),
        (ErrorCode.INVALID_REQUEST, "Invalid operation ANY"), (ErrorCode.INVALID_REQUEST, "Invalid permissionType UNKNOWN"),
        (ErrorCode.NONE, None)]
    response = await client.request(ApiKey.DESCRIBE_ACLS, version, wire_filter(None, LITERAL, operation=99))
    assert (response.error_code, response.error_message, response.resources) == (
        ErrorCode.INVALID_REQUEST, "Unknown entryFilter.", [])


async def test_creation_v1_and_later_refuses_filter_pattern_types(client):
    created = await client.request(ApiKey.CREATE_ACLS, 1, {"creations": [
        creation("t", MATCH), creation("t", ANY), creation("t", 0), creation("t", 9)]})
    assert outcomes(created.results) == [
        (ErrorCode.INVALID_REQUEST, "Invalid patternType MATCH"), (ErrorCode.INVALID_REQUEST, "Invalid patternType ANY"),
        (ErrorCode.INVALID_REQUEST, "Invalid patternType UNKNOWN"), (ErrorCode.INVALID_REQUEST, "Invalid patternType UNKNOWN")]


@pytest.mark.parametrize("version", VERSIONS)
async def test_without_an_authorizer_acl_requests_answer_security_disabled(tmp_path, nursery, version):
    async with Broker(BrokerConfig(port=0, data_dir=tmp_path)) as broker:
        await nursery.start(broker.serve)
        client = await WireClient.connect(broker.port)
        described = await client.request(ApiKey.DESCRIBE_ACLS, version, wire_filter(None, LITERAL))
        assert (described.error_code, described.error_message) == (
            ErrorCode.SECURITY_DISABLED, "No Authorizer is configured on the broker")
        created = await client.request(ApiKey.CREATE_ACLS, version, {"creations": [creation("a"), creation("")]})
        assert outcomes(created.results) == [(ErrorCode.SECURITY_DISABLED, "No Authorizer is configured.")] * 2
        deleted = await client.request(ApiKey.DELETE_ACLS, version, {"filters": [wire_filter(None, LITERAL)]})
        assert outcomes(deleted.filter_results) == [(ErrorCode.SECURITY_DISABLED, "No Authorizer is configured.")]
        await client.aclose()
        broker.stop()
    assert not (tmp_path / ACLS_FILE).exists()
