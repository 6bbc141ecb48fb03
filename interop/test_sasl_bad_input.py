"""Hostile input on a SASL_PLAINTEXT listener, over real sockets to a broker process: malformed
frames close that connection only while an authenticated client carries on; requests that would
change state, sent unauthenticated, are closed before any handler runs (the request trace has no
line for them, and an authenticated client sees nothing changed); garbage SASL tokens fail the
authentication and close the connection at once; and a flood of half-sent frames from
unauthenticated connections neither stops an authenticated client nor stays open."""

from __future__ import annotations

import json
import random
import socket
import threading
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (AclBindingFilter, AclOperation, AclPermissionType, AdminClient, ConfigResource,
                                   OffsetSpec, ResourcePatternType, ResourceType)
from kafka import KafkaConsumer, KafkaProducer

from broker.handlers.sasl import SASL_MAX_RECEIVE_SIZE
from broker.request_trace import error_names
from broker.wire_connection import WireConnection
from interop.admin_clients import eventually
from interop.bench.attacks import authenticate_plain
from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_MS, TIMEOUT_SECONDS
from interop.test_bad_input import BAD_INPUTS, closed_within, send_and_read
from protocol import headers, records
from protocol.errors import ErrorCode
from protocol.framing import SIZE_PREFIX, framed
from protocol.messages import ApiKey

USER, PASSWORD = "alice", "alice-secret"
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
# The client id of every unauthenticated request here: a trace line with it is a request answered.
HOSTILE = "unauthenticated"
# The client ids a trace line of an unauthenticated request would have: ours, test_bad_input's, or none.
HOSTILE_CLIENTS = {HOSTILE, "bad-input-test", None}
# The topic the unauthenticated requests aim at, and its records, produced by an authenticated client.
GUARDED = "guarded"
GUARDED_RECORDS = 2
HOSTILE_TOPIC, HOSTILE_GROUP, HOSTILE_TRANSACTION = "hostile-topic", "hostile-group", "hostile-transaction"
# The request trace's file, beside the broker's data directory.
TRACE_FILE = "trace.jsonl"
# A refused authentication closes its connection within this long.
PROMPTLY_SECONDS = 2
# The request read timeout of the broker: how long a half-sent frame may hold a connection.
READ_TIMEOUT_MS = 2000
CONFLUENT_SASL = {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                  "sasl.username": USER, "sasl.password": PASSWORD}
KAFKA_PYTHON_SASL = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN",
                     "sasl_plain_username": USER, "sasl_plain_password": PASSWORD}
API_VERSIONS_BODY = {"client_software_name": "sasl-bad-input-test", "client_software_version": "1"}


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory):
    """A broker whose one listener is SASL_PLAINTEXT, with the standard authorizer (alice a super
    user, so that an unauthenticated CreateAcls would show) and a request trace."""
    directory = tmp_path_factory.mktemp("sasl-bad-input")
    with BrokerProcess(
            directory / "data", "--listeners", "SASL_PLAINTEXT://127.0.0.1:0",
            "--override", f"comlog.sasl.users={USER}:{PASSWORD}",
            "--authorizer-class-name", STANDARD_AUTHORIZER, "--super-users", f"User:{USER}",
            "--request-read-timeout-ms", str(READ_TIMEOUT_MS), "--trace", str(directory / TRACE_FILE),
            port=None) as process:
        producer = Producer({"bootstrap.servers": process.bootstrap, **CONFLUENT_SASL})
        for n in range(GUARDED_RECORDS):
            producer.produce(GUARDED, b"guarded-%d" % n, partition=0)
        assert producer.flush(TIMEOUT_SECONDS) == 0
        yield process


@pytest.fixture(scope="module")
def admin(sasl_broker):
    return AdminClient({"bootstrap.servers": sasl_broker.bootstrap, "socket.timeout.ms": TIMEOUT_MS, **CONFLUENT_SASL})


def port(broker: BrokerProcess) -> int:
    return broker.ports["SASL_PLAINTEXT"]


def request(api_key: int, version: int, body: dict, correlation_id: int = 1) -> bytes:
    return framed(headers.encode_request(api_key, version, correlation_id, HOSTILE, body))


def response_frames(data: bytes) -> list[bytes]:
    """The size-prefixed frames `data` holds, whole."""
    frames = []
    while data:
        (size,) = SIZE_PREFIX.unpack_from(data)
        assert len(data) >= SIZE_PREFIX.size + size, "a response was cut short"
        frames.append(data[SIZE_PREFIX.size:SIZE_PREFIX.size + size])
        data = data[SIZE_PREFIX.size + size:]
    return frames


def read_until_closed(sock: socket.socket, seconds: float = PROMPTLY_SECONDS) -> bytes:
    """What the broker sends before it closes `sock`; fails unless it closes within `seconds`."""
    sock.settimeout(seconds)
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        except TimeoutError:
            pytest.fail(f"the broker did not close the connection within {seconds} s")
        if not chunk:
            return received
        received += chunk


def hostile_connection(broker: BrokerProcess) -> WireConnection:
    return WireConnection.connect(port(broker), timeout=PROMPTLY_SECONDS, client_id=HOSTILE)


def traced(broker: BrokerProcess) -> list[dict]:
    """The request trace's lines, once every request answered before this call is in it."""
    marker = f"trace-sync-{uuid.uuid4().hex}"
    with WireConnection.connect(port(broker), client_id=marker) as connection:
        connection.request(ApiKey.API_VERSIONS, 3, API_VERSIONS_BODY)

    def lines() -> list[dict] | None:
        text = (broker.data_dir.parent / TRACE_FILE).read_text()
        # Up to the last newline: a line being written when we read is not whole yet.
        found = [json.loads(line) for line in text[:text.rfind("\n") + 1].splitlines()]
        return found if any(line["client"] == marker for line in found) else None
    return eventually(lines, "the trace to show the marker request")


def answered_unauthenticated(broker: BrokerProcess) -> list[str]:
    """The APIs of the unauthenticated requests that reached a handler (but those allowed before
    authentication)."""
    return [line["api"] for line in traced(broker)
            if line["client"] in HOSTILE_CLIENTS and line["api"] not in ("ApiVersions", "SaslHandshake", "SaslAuthenticate")]


def assert_no_traceback(broker: BrokerProcess) -> None:
    assert "Traceback" not in broker.log_text(), broker.log_text()


def test_bad_input_closes_only_that_connection(sasl_broker):
    # The same bad frames as on a plaintext listener, each on a connection of its own, while an
    # authenticated kafka-python client produces and reads back on the same listener.
    topic = f"good-{uuid.uuid4().hex[:8]}"
    settings = {"bootstrap_servers": sasl_broker.bootstrap, "request_timeout_ms": TIMEOUT_MS, **KAFKA_PYTHON_SASL}
    producer = KafkaProducer(**settings)
    stop = threading.Event()
    rounds: list[dict[str, bytes]] = []
    failures = []

    def attack() -> None:
        try:
            while not stop.is_set() or not rounds:
                rounds.append({name: send_and_read(port(sasl_broker), data, close_write=True)
                               for name, data in BAD_INPUTS.items()})
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread (pytest.fail too)
            failures.append(exc)

    attacker = threading.Thread(target=attack)
    attacker.start()
    try:
        for n in range(100):
            producer.send(topic, b"good-%d" % n, partition=0).get(TIMEOUT_SECONDS)
    finally:
        stop.set()
        attacker.join(TIMEOUT_SECONDS)
        producer.close()
    assert not failures
    assert rounds and all(received == b"" for bad_round in rounds for received in bad_round.values()), rounds
    consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=TIMEOUT_MS, **settings)
    try:
        values = [message.value for _, message in zip(range(100), consumer)]
    finally:
        consumer.close()
    assert values == [b"good-%d" % n for n in range(100)]
    assert "closing connection" in sasl_broker.log_text()
    assert answered_unauthenticated(sasl_broker) == []
    assert_no_traceback(sasl_broker)


# Requests that would change the broker's state, each as its API's name in the trace.
STATE_CHANGING = {
    "Produce": (ApiKey.PRODUCE, 9, {
        "transactional_id": None, "acks": 1, "timeout_ms": 5000,
        "topic_data": [{"name": GUARDED, "partition_data": [
            {"index": 0, "records": records.build_batch([records.Record(value=b"hostile")])}]}]}),
    "CreateTopics": (ApiKey.CREATE_TOPICS, 5, {
        "topics": [{"name": HOSTILE_TOPIC, "num_partitions": 1, "replication_factor": 1}], "timeout_ms": 5000}),
    "DeleteTopics": (ApiKey.DELETE_TOPICS, 4, {"topic_names": [GUARDED], "timeout_ms": 5000}),
    # Offset -1: up to the high watermark, every record.
    "DeleteRecords": (ApiKey.DELETE_RECORDS, 2, {
        "topics": [{"name": GUARDED, "partitions": [{"partition_index": 0, "offset": -1}]}], "timeout_ms": 5000}),
    "OffsetCommit": (ApiKey.OFFSET_COMMIT, 8, {
        "group_id": HOSTILE_GROUP, "generation_id_or_member_epoch": -1, "member_id": "",
        "topics": [{"name": GUARDED, "partitions": [{"partition_index": 0, "committed_offset": 1}]}]}),
    # ALLOW ALL on the topic to anyone (resource TOPIC 2, pattern LITERAL 3, operation ALL 2, ALLOW 3).
    "CreateAcls": (ApiKey.CREATE_ACLS, 3, {"creations": [{
        "resource_type": 2, "resource_name": GUARDED, "resource_pattern_type": 3, "principal": "User:*",
        "host": "*", "operation": 2, "permission_type": 3}]}),
    "AlterConfigs": (ApiKey.ALTER_CONFIGS, 2, {"resources": [{
        "resource_type": 2, "resource_name": GUARDED, "configs": [{"name": "retention.ms", "value": "1"}]}],
        "validate_only": False}),
    "InitProducerId": (ApiKey.INIT_PRODUCER_ID, 4, {
        "transactional_id": HOSTILE_TRANSACTION, "transaction_timeout_ms": 60_000, "producer_id": -1,
        "producer_epoch": -1}),
    "JoinGroup": (ApiKey.JOIN_GROUP, 7, {
        "group_id": HOSTILE_GROUP, "session_timeout_ms": 10_000, "rebalance_timeout_ms": 10_000, "member_id": "",
        "protocol_type": "consumer", "protocols": [{"name": "range", "metadata": b""}]}),
}


def changes_seen(broker: BrokerProcess, admin: AdminClient) -> list[str]:
    """What an authenticated client sees changed of what the unauthenticated requests aim at."""
    changes = []
    topics = admin.list_topics(timeout=TIMEOUT_SECONDS).topics
    if HOSTILE_TOPIC in topics:
        changes.append(f"topic {HOSTILE_TOPIC} created")
    if GUARDED not in topics:
        return [*changes, f"topic {GUARDED} deleted"]
    partition = TopicPartition(GUARDED, 0)
    start, end = (admin.list_offsets({partition: spec}, request_timeout=TIMEOUT_SECONDS)[partition]
                  .result(TIMEOUT_SECONDS).offset for spec in (OffsetSpec.earliest(), OffsetSpec.latest()))
    if (start, end) != (0, GUARDED_RECORDS):
        changes.append(f"{GUARDED}'s offsets are now {start} to {end}")
    (future,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, GUARDED)],
                                       request_timeout=TIMEOUT_SECONDS).values()
    if not future.result(TIMEOUT_SECONDS)["retention.ms"].is_default:
        changes.append(f"{GUARDED} retention.ms altered")
    acls = admin.describe_acls(AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                                AclOperation.ANY, AclPermissionType.ANY),
                               request_timeout=TIMEOUT_SECONDS).result(TIMEOUT_SECONDS)
    if acls:
        changes.append(f"ACLs created: {acls}")
    groups = admin.list_consumer_groups(request_timeout=TIMEOUT_SECONDS).result(TIMEOUT_SECONDS).valid
    if HOSTILE_GROUP in {group.group_id for group in groups}:
        changes.append(f"group {HOSTILE_GROUP} created")
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": HOSTILE_GROUP, **CONFLUENT_SASL})
    try:
        (committed,) = consumer.committed([partition], TIMEOUT_SECONDS)
    finally:
        consumer.close()
    if committed.offset >= 0:
        changes.append(f"offset {committed.offset} committed for {HOSTILE_GROUP}")
    with WireConnection.connect(port(broker)) as connection:
        authenticate_plain(connection, USER, PASSWORD)
        listed = connection.request(ApiKey.LIST_TRANSACTIONS, 0, {"state_filters": [], "producer_id_filters": []})
    if HOSTILE_TRANSACTION in {state.transactional_id for state in listed.transaction_states}:
        changes.append(f"transactional id {HOSTILE_TRANSACTION} initialised")
    return changes


def state_changing_request(api: str) -> bytes:
    api_key, version, body = STATE_CHANGING[api]
    return request(api_key, version, body, correlation_id=9)


def refused_amid_authentication(broker: BrokerProcess, api: str) -> list:
    """The bodies of the answers to `api`'s request sent after a SaslHandshake, on a connection
    the broker then closes."""
    api_key, version, _ = STATE_CHANGING[api]
    handshake, *refused = response_frames(send_and_read(
        port(broker), request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"}, correlation_id=8)
        + state_changing_request(api)))
    assert headers.decode_response(handshake, ApiKey.SASL_HANDSHAKE, 1)[1].error_code == ErrorCode.NONE
    answers = [headers.decode_response(frame, api_key, version) for frame in refused]
    assert all(header.correlation_id == 9 for header, _ in answers)
    return [body for _, body in answers]


@pytest.mark.parametrize("api", list(STATE_CHANGING))
def test_an_unauthenticated_request_that_would_change_state_never_reaches_its_handler(sasl_broker, admin, api):
    api_key, version, _ = STATE_CHANGING[api]
    hostile = state_changing_request(api)
    # A well-formed request of that API: what closes it is the connection's SASL state alone.
    header, _ = headers.decode_request(hostile[SIZE_PREFIX.size:])
    assert (header.request_api_key, header.request_api_version) == (api_key, version)

    # As the first request, and after ApiVersions: closed, with no response (to it).
    assert send_and_read(port(sasl_broker), hostile) == b""
    (versions,) = response_frames(send_and_read(port(sasl_broker), request(ApiKey.API_VERSIONS, 3, API_VERSIONS_BODY)
                                                + hostile))
    assert headers.decode_response(versions, ApiKey.API_VERSIONS, 3)[1].error_code == ErrorCode.NONE
    # Amid the authentication (after SaslHandshake): closed, after an ILLEGAL_SASL_STATE answer at
    # most (see the test below).
    refused = refused_amid_authentication(sasl_broker, api)
    assert len(refused) <= 1 and all(error_names(body) == ["ILLEGAL_SASL_STATE"] for body in refused)

    assert answered_unauthenticated(sasl_broker) == []
    assert changes_seen(sasl_broker, admin) == []
    assert_no_traceback(sasl_broker)


# Kafka's SaslServerAuthenticator answers any request amid the authentication with the request's
# error response (ILLEGAL_SASL_STATE), per topic or per resource where its response has them.
@pytest.mark.parametrize("api", list(STATE_CHANGING))
def test_amid_the_authentication_a_request_is_answered_illegal_sasl_state_as_kafka_does(sasl_broker, api):
    (refused,) = refused_amid_authentication(sasl_broker, api)
    assert error_names(refused) == ["ILLEGAL_SASL_STATE"]


def random_bytes(size: int) -> bytes:
    return random.Random(15).randbytes(size)


@pytest.mark.parametrize(("mechanism", "token"), [
    ("PLAIN", random_bytes(64)),
    ("PLAIN", b""),
    ("SCRAM-SHA-256", b"n,,n=alice"),  # a client-first without its nonce
    ("SCRAM-SHA-512", random_bytes(64)),
], ids=["PLAIN random bytes", "PLAIN empty token", "SCRAM client-first without nonce", "SCRAM random bytes"])
def test_a_garbage_token_fails_the_authentication_and_closes_the_connection(sasl_broker, mechanism, token):
    with hostile_connection(sasl_broker) as connection:
        assert connection.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": mechanism}).error_code == ErrorCode.NONE
        answer = connection.request(ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": token})
        assert answer.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
        assert read_until_closed(connection.socket) == b""
    assert_no_traceback(sasl_broker)


def test_a_token_over_the_pre_authentication_limit_closes_the_connection_on_its_size(sasl_broker):
    oversized = request(ApiKey.SASL_AUTHENTICATE, 2, {"auth_bytes": random_bytes(1 << 20)}, correlation_id=2)
    size = len(oversized) - SIZE_PREFIX.size
    assert size > SASL_MAX_RECEIVE_SIZE
    with hostile_connection(sasl_broker) as connection:
        assert connection.request(ApiKey.SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"}).error_code == ErrorCode.NONE
        try:
            connection.socket.sendall(oversized)
        except OSError:
            pass  # the broker closed the connection before it had all of the frame
        assert read_until_closed(connection.socket) == b""
    eventually(lambda: f"frame of {size} bytes is over the limit of {SASL_MAX_RECEIVE_SIZE} bytes"
               in sasl_broker.log_text(), "the broker to log why it closed the connection")
    assert_no_traceback(sasl_broker)


def test_a_garbage_raw_token_after_a_v0_handshake_closes_the_connection(sasl_broker):
    with hostile_connection(sasl_broker) as connection:
        assert connection.request(ApiKey.SASL_HANDSHAKE, 0, {"mechanism": "PLAIN"}).error_code == ErrorCode.NONE
        # After SaslHandshake v0 the next frame is a bare token, with no request header.
        connection.socket.sendall(framed(random_bytes(64)))
        assert read_until_closed(connection.socket) == b""
    assert_no_traceback(sasl_broker)


FLOOD_CONNECTIONS = 200
FLOOD_FRAME_BYTES = 500_000


def test_a_flood_of_half_sent_frames_does_not_stop_an_authenticated_client(sasl_broker):
    topic = f"flooded-{uuid.uuid4().hex[:8]}"
    flood = [socket.create_connection(("127.0.0.1", port(sasl_broker)), timeout=TIMEOUT_SECONDS)
             for _ in range(FLOOD_CONNECTIONS)]
    try:
        for sock in flood:
            # Under the 512 KiB limit, so the broker waits for the rest, which never comes.
            sock.sendall(SIZE_PREFIX.pack(FLOOD_FRAME_BYTES) + random_bytes(1000))
        # A new authenticated client, while the flood holds its connections.
        producer = Producer({"bootstrap.servers": sasl_broker.bootstrap, "acks": "all", **CONFLUENT_SASL})
        delivered = []
        for n in range(20):
            producer.produce(topic, b"flooded-%d" % n, partition=0,
                             on_delivery=lambda error, message: delivered.append((error, message.offset())))
            producer.flush(TIMEOUT_SECONDS)
        assert delivered == [(None, n) for n in range(20)]
        # The request read timeout closes every half-sent frame's connection.
        assert all(closed_within(sock, READ_TIMEOUT_MS / 1000 + TIMEOUT_SECONDS) for sock in flood)
    finally:
        for sock in flood:
            sock.close()
    assert_no_traceback(sasl_broker)
