"""broker.faults.error_answer: the answer to a request failing with one error everywhere, as
Kafka's AbstractRequest.getErrorResponse (3.9) builds it, for every API and version the broker
serves; the answer fault injection and SASL (a request amid an authentication) send."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

from broker.faults import error_answer
from broker.handlers import HANDLERS
from protocol.errors import ErrorCode
from protocol.messages import REQUESTS, RESPONSES, ApiKey
from protocol.schema import ZERO_UUID

sys.path.append(str(Path(__file__).parents[1] / "protocol"))  # the message samples, beside the protocol tests
from message_samples import sample  # noqa: E402

ERROR = ErrorCode.ILLEGAL_SASL_STATE
SERVED = [(api, version) for api, handler in sorted(HANDLERS.items())
          for version in range(handler.min_version, handler.max_version + 1)]
# The fields carrying the answer's error (CreateTopics' topic_config_error_code is not one:
# Kafka's answer leaves it 0).
ERROR_FIELDS = {"error_code", "partition_error_code"}
# No served API and version lacks a place for the error in Kafka's getErrorResponse: each has a
# top-level error code or a list of the request answered entry by entry. The one request Kafka
# gives no answer is a Produce with acks 0 (no response at all), tested below.


def served_id(case: tuple[int, int]) -> str:
    return f"{REQUESTS[case[0]].name}-v{case[1]}"


def representative(api: int, version: int, full: bool):
    """A request of every field of that version: naming two of everything its lists hold (full),
    or with every nullable field null and every list empty. A Produce's acks are all (-1): with
    acks 0 there is no answer (tested below)."""
    value = sample(REQUESTS[api], version, full)
    if api == ApiKey.PRODUCE:
        value["acks"] = -1
    return as_decoded(api, version, value)


def as_decoded(api: int, version: int, value: dict):
    """The request as the broker reads it off the wire: exactly the fields of that version."""
    return REQUESTS[api].decode(version, REQUESTS[api].encode(version, value))


def answered(api: int, version: int, request) -> dict:
    """The decoded error answer to `request`, after encoding it at its version."""
    answer = error_answer(api, version, request, ERROR, HANDLERS[api].failed)
    assert answer is not None
    return RESPONSES[api].decode(version, RESPONSES[api].encode(version, answer))


def error_codes(value) -> list[int]:
    if isinstance(value, dict):
        return [code for name, field in value.items()
                for code in ([field] if name in ERROR_FIELDS else error_codes(field))]
    if isinstance(value, list):
        return [code for item in value for code in error_codes(item)]
    return []


@pytest.mark.parametrize("case", SERVED, ids=served_id)
def test_every_served_version_answers_the_error_everywhere_it_has_one(case):
    api, version = case
    # Each list answered entry by entry gives entries, each with the error.
    codes = error_codes(answered(api, version, representative(api, version, full=True)))
    assert codes and set(codes) == {ERROR}


@pytest.mark.parametrize("case", SERVED, ids=served_id)
def test_a_request_with_null_or_empty_lists_is_answered_too(case):
    api, version = case
    codes = error_codes(answered(api, version, representative(api, version, full=False)))
    assert set(codes) <= {ERROR}


def test_a_produce_with_acks_0_has_no_answer_as_on_kafka():
    request = as_decoded(ApiKey.PRODUCE, 9, {"acks": 0, "timeout_ms": 1000, "topic_data": [
        {"name": "t", "partition_data": [{"index": 0, "records": None}]}]})
    assert error_answer(ApiKey.PRODUCE, 9, request, ERROR, {}) is None


def test_create_topics_answers_each_topic_named():
    request = as_decoded(ApiKey.CREATE_TOPICS, 5, {"topics": [
        {"name": "a", "num_partitions": 3, "replication_factor": 1},
        {"name": "b", "num_partitions": -1, "replication_factor": -1,
         "configs": [{"name": "cleanup.policy", "value": "compact"}]}], "timeout_ms": 1000})
    assert answered(ApiKey.CREATE_TOPICS, 5, request) == {"throttle_time_ms": 0, "topics": [
        {"name": name, "error_code": ERROR, "error_message": None, "topic_config_error_code": 0,
         "num_partitions": -1, "replication_factor": -1, "configs": []} for name in ("a", "b")]}


def test_delete_topics_answers_each_topic_by_name_or_id():
    topic_id = uuid.uuid4()
    request = as_decoded(ApiKey.DELETE_TOPICS, 6, {"topics": [
        {"name": None, "topic_id": topic_id}, {"name": "b", "topic_id": ZERO_UUID}], "timeout_ms": 1000})
    assert answered(ApiKey.DELETE_TOPICS, 6, request) == {"throttle_time_ms": 0, "responses": [
        {"name": None, "topic_id": topic_id, "error_code": ERROR, "error_message": None},
        {"name": "b", "topic_id": ZERO_UUID, "error_code": ERROR, "error_message": None}]}
    # Before v6, by name only.
    request = as_decoded(ApiKey.DELETE_TOPICS, 4, {"topic_names": ["a", "b"], "timeout_ms": 1000})
    assert answered(ApiKey.DELETE_TOPICS, 4, request) == {"throttle_time_ms": 0, "responses": [
        {"name": "a", "error_code": ERROR}, {"name": "b", "error_code": ERROR}]}


def test_create_acls_answers_one_result_per_creation():
    creation = {"resource_type": 2, "resource_name": "t", "resource_pattern_type": 3, "principal": "User:*",
                "host": "*", "operation": 2, "permission_type": 3}
    request = as_decoded(ApiKey.CREATE_ACLS, 3, {"creations": [creation, {**creation, "resource_name": "u"}]})
    assert answered(ApiKey.CREATE_ACLS, 3, request) == {"throttle_time_ms": 0, "results": [
        {"error_code": ERROR, "error_message": None}] * 2}


def test_alter_configs_answers_each_resource_with_its_type_and_name():
    request = as_decoded(ApiKey.ALTER_CONFIGS, 2, {"resources": [
        {"resource_type": 2, "resource_name": "t", "configs": [{"name": "retention.ms", "value": "1"}]},
        {"resource_type": 4, "resource_name": "1", "configs": []}], "validate_only": False})
    assert answered(ApiKey.ALTER_CONFIGS, 2, request) == {"throttle_time_ms": 0, "responses": [
        {"error_code": ERROR, "error_message": None, "resource_type": 2, "resource_name": "t"},
        {"error_code": ERROR, "error_message": None, "resource_type": 4, "resource_name": "1"}]}


def test_describe_groups_answers_each_group_id_as_unknown():
    request = as_decoded(ApiKey.DESCRIBE_GROUPS, 5, {"groups": ["g", "h"], "include_authorized_operations": True})
    # Kafka's DescribeGroupsResponse.groupError: unknown state, protocol type and protocol, no
    # members, authorized operations omitted (Integer.MIN_VALUE).
    assert answered(ApiKey.DESCRIBE_GROUPS, 5, request) == {"throttle_time_ms": 0, "groups": [
        {"error_code": ERROR, "group_id": group, "group_state": "", "protocol_type": "", "protocol_data": "",
         "members": [], "authorized_operations": -(1 << 31)} for group in ("g", "h")]}


def test_fetch_answers_each_partition_and_at_the_top_until_v13_then_at_the_top_only():
    partitions = [{"partition": 0, "fetch_offset": 5, "partition_max_bytes": 1024},
                  {"partition": 2, "fetch_offset": 0, "partition_max_bytes": 1024}]
    request = as_decoded(ApiKey.FETCH, 12, {"max_wait_ms": 500, "min_bytes": 1, "session_id": 7,
                                            "topics": [{"topic": "t", "partitions": partitions}]})
    answer = answered(ApiKey.FETCH, 12, request)
    assert (answer.error_code, answer.session_id) == (ERROR, 7)
    assert [(topic.topic, [(p.partition_index, p.error_code, p.high_watermark) for p in topic.partitions])
            for topic in answer.responses] == [("t", [(0, ERROR, -1), (2, ERROR, -1)])]

    request = as_decoded(ApiKey.FETCH, 13, {"max_wait_ms": 500, "min_bytes": 1, "session_id": 7,
                                            "topics": [{"topic_id": uuid.uuid4(), "partitions": partitions}]})
    answer = answered(ApiKey.FETCH, 13, request)
    assert (answer.error_code, answer.session_id, answer.responses) == (ERROR, 7, [])


def test_metadata_answers_a_topic_named_by_id_only_with_an_empty_name():
    topic_id = uuid.uuid4()
    request = as_decoded(ApiKey.METADATA, 11, {"topics": [{"topic_id": topic_id, "name": None}],
                                               "include_topic_authorized_operations": False})
    assert [(t.name, t.topic_id, t.error_code, t.partitions) for t in answered(ApiKey.METADATA, 11, request).topics] \
        == [("", topic_id, ERROR, [])]


def test_alter_user_scram_credentials_answers_each_user_once_in_order():
    upsertion = {"mechanism": 1, "iterations": 4096, "salt": b"s", "salted_password": b"p"}
    request = as_decoded(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, 0, {
        "deletions": [{"name": "carol", "mechanism": 2}],
        "upsertions": [{"name": "bob", **upsertion}, {"name": "carol", **upsertion}, {"name": "alice", **upsertion}]})
    assert answered(ApiKey.ALTER_USER_SCRAM_CREDENTIALS, 0, request).results == [
        {"user": user, "error_code": ERROR, "error_message": None} for user in ("alice", "bob", "carol")]


@pytest.mark.parametrize("version", range(4))
def test_find_coordinator_before_v4_answers_no_node(version):
    request = as_decoded(ApiKey.FIND_COORDINATOR, version, {"key": "g", "key_type": 0})
    answer = answered(ApiKey.FIND_COORDINATOR, version, request)
    # Kafka's FindCoordinatorResponse.prepareOldResponse with Node.noNode().
    assert (answer.error_code, answer.node_id, answer.host, answer.port) == (ERROR, -1, "", -1)


@pytest.mark.parametrize("version", [5, 6, 7, 9])
def test_join_group_answers_no_protocol_null_from_v7_and_empty_before(version):
    request = representative(ApiKey.JOIN_GROUP, version, full=True)
    answer = answered(ApiKey.JOIN_GROUP, version, request)
    assert (answer.error_code, answer.generation_id, answer.protocol_name, answer.leader, answer.member_id) == (
        ERROR, -1, None if version >= 7 else "", "", "")


@pytest.mark.parametrize("api", [ApiKey.SASL_AUTHENTICATE, ApiKey.DESCRIBE_ACLS,
                                 ApiKey.DESCRIBE_USER_SCRAM_CREDENTIALS])
def test_a_top_level_message_is_null_as_kafkas_api_error_leaves_it(api):
    version = HANDLERS[api].max_version
    answer = answered(api, version, representative(api, version, full=True))
    assert (answer.error_code, answer.error_message) == (ERROR, None)
