"""The group APIs on the wire, with requests this project encodes itself: the answers Kafka gives
where clients are picky (FindCoordinator for groups, transactions and batched keys, MEMBER_ID_REQUIRED,
null versus empty fields, unknown topics and groups)."""

from __future__ import annotations

import socket
import struct

import pytest

from interop.clients import TIMEOUT_SECONDS, TOPIC, assert_broker_healthy
from protocol import headers
from protocol.errors import ErrorCode

FIND_COORDINATOR, JOIN_GROUP, SYNC_GROUP, LEAVE_GROUP, OFFSET_COMMIT, OFFSET_FETCH = 10, 11, 14, 13, 8, 9
API_VERSIONS = 18
_SIZE = struct.Struct(">i")
PROTOCOLS = [{"name": "range", "metadata": b"subscription"}]


class Connection:
    """One client connection sending requests one at a time."""

    def __init__(self, broker) -> None:
        self.socket = socket.create_connection(("127.0.0.1", broker.port), timeout=TIMEOUT_SECONDS)
        self.reader = self.socket.makefile("rb")
        self.correlation_id = 0

    def call(self, api_key: int, version: int, body: dict):
        self.correlation_id += 1
        frame = headers.encode_request(api_key, version, self.correlation_id, "wire-test", body)
        self.socket.sendall(_SIZE.pack(len(frame)) + frame)
        (size,) = _SIZE.unpack(self.reader.read(_SIZE.size))
        header, response = headers.decode_response(self.reader.read(size), api_key, version)
        assert header.correlation_id == self.correlation_id
        return response

    def close(self) -> None:
        self.reader.close()
        self.socket.close()


@pytest.fixture
def connection(shared_broker):
    connection = Connection(shared_broker)
    yield connection
    connection.close()
    assert_broker_healthy(shared_broker)


def test_the_group_apis_are_advertised(connection):
    versions = connection.call(API_VERSIONS, 3, {"client_software_name": "wire", "client_software_version": "1"})
    table = {api.api_key: (api.min_version, api.max_version) for api in versions.api_keys}
    # librdkafka turns groups on only when FindCoordinator v0 is in range.
    assert table[FIND_COORDINATOR][0] == 0
    assert {8, 9, 10, 11, 12, 13, 14, 15, 16, 42} <= set(table)


def test_find_coordinator(connection, shared_broker):
    group = connection.call(FIND_COORDINATOR, 0, {"key": "any-group"})
    assert (group.error_code, group.node_id, group.host, group.port) == (
        ErrorCode.NONE, 1, "127.0.0.1", shared_broker.port)
    # This broker is every transactional id's coordinator too.
    transaction = connection.call(FIND_COORDINATOR, 3, {"key": "txn", "key_type": 1})
    assert (transaction.error_code, transaction.node_id, transaction.port) == (ErrorCode.NONE, 1, shared_broker.port)
    batched_transactions = connection.call(FIND_COORDINATOR, 4, {"key_type": 1, "coordinator_keys": ["t1", "t2"]})
    assert [(c.key, c.node_id, c.error_code) for c in batched_transactions.coordinators] == [
        ("t1", 1, ErrorCode.NONE), ("t2", 1, ErrorCode.NONE)]
    batched = connection.call(FIND_COORDINATOR, 4, {"key_type": 0, "coordinator_keys": ["a", "b"]})
    assert [(c.key, c.node_id, c.error_code) for c in batched.coordinators] == [
        ("a", 1, ErrorCode.NONE), ("b", 1, ErrorCode.NONE)]
    unknown_type = connection.call(FIND_COORDINATOR, 4, {"key_type": 9, "coordinator_keys": ["a"]})
    assert unknown_type.coordinators[0].error_code == ErrorCode.INVALID_REQUEST


def join(connection, version: int, group: str, member_id: str = ""):
    return connection.call(JOIN_GROUP, version, {
        "group_id": group, "session_timeout_ms": 10000, "rebalance_timeout_ms": 10000, "member_id": member_id,
        "group_instance_id": None, "protocol_type": "consumer", "protocols": PROTOCOLS})


@pytest.mark.parametrize("version", [4, 7, 9])
def test_join_and_sync_one_member(connection, version):
    group = f"wire-join-v{version}"
    first = join(connection, version, group)
    assert (first.error_code, first.generation_id, first.leader) == (ErrorCode.MEMBER_ID_REQUIRED, -1, "")
    # An error response has no protocol name: null where the version allows it, else empty.
    assert first.protocol_name == (None if version >= 7 else "")
    joined = join(connection, version, group, first.member_id)
    assert (joined.error_code, joined.generation_id, joined.leader, joined.member_id) == (
        ErrorCode.NONE, 1, first.member_id, first.member_id)
    assert [(m.member_id, m.metadata) for m in joined.members] == [(first.member_id, b"subscription")]
    # The leader leaves itself out of the assignments: it gets empty bytes, not null.
    synced = connection.call(SYNC_GROUP, 5 if version >= 7 else 3, {
        "group_id": group, "generation_id": 1, "member_id": first.member_id, "group_instance_id": None,
        "protocol_type": "consumer", "protocol_name": "range", "assignments": []})
    assert (synced.error_code, synced.assignment) == (ErrorCode.NONE, b"")
    left = connection.call(LEAVE_GROUP, 3, {"group_id": group, "members": [
        {"member_id": first.member_id, "group_instance_id": None},
        {"member_id": "stranger", "group_instance_id": None}]})
    assert [(m.member_id, m.error_code) for m in left.members] == [
        (first.member_id, ErrorCode.NONE), ("stranger", ErrorCode.UNKNOWN_MEMBER_ID)]


def test_leave_an_unknown_group_before_v3(connection):
    assert connection.call(LEAVE_GROUP, 0, {"group_id": "wire-nobody", "member_id": "m"}).error_code == \
        ErrorCode.UNKNOWN_MEMBER_ID


def test_offsets_of_unknown_topics_and_groups(connection):
    committed = connection.call(OFFSET_COMMIT, 2, {
        "group_id": "wire-offsets", "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": -1,
        "topics": [{"name": TOPIC, "partitions": [
                       {"partition_index": 0, "committed_offset": 0, "committed_metadata": None},
                       {"partition_index": 5, "committed_offset": 0, "committed_metadata": None}]},
                   {"name": "no-such-topic", "partitions": [
                       {"partition_index": 0, "committed_offset": 0, "committed_metadata": "m"}]}]})
    assert [(t.name, [(p.partition_index, p.error_code) for p in t.partitions]) for t in committed.topics] == [
        (TOPIC, [(0, ErrorCode.NONE), (5, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]),
        ("no-such-topic", [(0, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)])]
    fetched = connection.call(OFFSET_FETCH, 1, {"group_id": "wire-offsets", "topics": [
        {"name": TOPIC, "partition_indexes": [0, 1]}]})
    # A null commit metadata reads back as empty; a partition without a commit as offset -1.
    assert [(p.partition_index, p.committed_offset, p.metadata, p.error_code) for p in fetched.topics[0].partitions] \
        == [(0, 0, "", ErrorCode.NONE), (1, -1, "", ErrorCode.NONE)]
    groups = connection.call(OFFSET_FETCH, 8, {"groups": [
        {"group_id": "wire-offsets", "topics": None}, {"group_id": "wire-nobody", "topics": None}],
        "require_stable": False})
    assert [(g.group_id, [(t.name, [p.committed_offset for p in t.partitions]) for t in g.topics], g.error_code)
            for g in groups.groups] == [("wire-offsets", [(TOPIC, [0])], ErrorCode.NONE),
                                        ("wire-nobody", [], ErrorCode.NONE)]
