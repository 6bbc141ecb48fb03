"""Malformed input on one connection closes that connection only; other clients carry on."""

import socket
import struct
import threading

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from protocol import headers
from protocol.errors import ErrorCode

TOPIC = "comlog"
PARTITION = TopicPartition(TOPIC, 0)
API_VERSIONS = 18


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def request(api_key: int, version: int, body: dict, correlation_id: int = 1) -> bytes:
    return frame(headers.encode_request(api_key, version, correlation_id, "bad-input-test", body))


def send_and_read(port: int, data: bytes, *, close_write: bool = False) -> bytes:
    """Send raw bytes; return everything the broker sends back until it closes (or 10 s pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        if close_write:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                pytest.fail("the broker neither answered nor closed the connection")
            if not chunk:
                return received
            received += chunk


def unsupported_version_request() -> bytes:
    raw = bytearray(headers.encode_request(0, 3, 9, "bad-input-test", {
        "transactional_id": None, "acks": 1, "timeout_ms": 1000, "topic_data": []}))
    raw[2:4] = struct.pack(">h", 99)
    return frame(bytes(raw))


BAD_INPUTS = {
    "garbage": b"\x00\x00\x00\x10" + b"\xde\xad\xbe\xef" * 4,
    "random bytes": bytes(range(256)) * 4,
    "truncated frame": b"\x00\x00\x01\x00" + b"\x00\x12\x00\x03",
    "2 GiB frame": struct.pack(">i", 2**31 - 1) + b"\x00" * 64,
    "negative size": struct.pack(">i", -5),
    "unknown API key": frame(struct.pack(">hhih", 999, 0, 1, -1)),
    "unsupported version": unsupported_version_request(),
    "header only": frame(struct.pack(">hh", 0, 9)),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_closes_only_that_connection(shared_broker, name):
    received = send_and_read(shared_broker.port, BAD_INPUTS[name], close_write=True)
    assert received == b""
    # The broker is still there and answering.
    response = send_and_read_one(shared_broker.port, request(API_VERSIONS, 3, {
        "client_software_name": "t", "client_software_version": "1"}))
    assert response.error_code == ErrorCode.NONE


def send_and_read_one(port: int, data: bytes):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        size = struct.unpack(">i", recv_exactly(sock, 4))[0]
        return headers.decode_response(recv_exactly(sock, size), API_VERSIONS, 3)[1]


def recv_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, "connection closed early"
        data += chunk
    return data


def test_well_behaved_client_keeps_working_during_bad_input(broker):
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    stop = threading.Event()
    failures = []

    def attack():
        try:
            while not stop.is_set():
                for data in BAD_INPUTS.values():
                    send_and_read(broker.port, data, close_write=True)
        except Exception as exc:  # noqa: BLE001 - reported to the test thread
            failures.append(exc)

    attacker = threading.Thread(target=attack)
    attacker.start()
    try:
        for i in range(300):
            producer.send(TOPIC, value=b"good-%d" % i).get(timeout=10)
    finally:
        stop.set()
        attacker.join(30)
    producer.close()
    assert not failures
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, consumer_timeout_ms=10_000)
    consumer.assign([PARTITION])
    consumer.seek_to_beginning(PARTITION)
    values = []
    for message in consumer:
        values.append(message.value)
        if len(values) == 300:
            break
    consumer.close()
    assert values == [b"good-%d" % i for i in range(300)]
    assert "closing connection" in broker.log_text()
