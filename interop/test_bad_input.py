"""Malformed input on one connection closes that connection only; other clients carry on."""

import socket
import struct
import threading
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from broker.wire_connection import WireConnection
from interop.bench.servers import peak_resident_bytes
from interop.broker_process import BrokerProcess
from protocol import headers
from protocol.errors import ErrorCode
from protocol.framing import SIZE_PREFIX, framed
from protocol.messages import ApiKey

TOPIC = "comlog"
PARTITION = TopicPartition(TOPIC, 0)


def request(api_key: int, version: int, body: dict, correlation_id: int = 1) -> bytes:
    return framed(headers.encode_request(api_key, version, correlation_id, "bad-input-test", body))


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
    return framed(bytes(raw))


BAD_INPUTS = {
    "garbage": b"\x00\x00\x00\x10" + b"\xde\xad\xbe\xef" * 4,
    "random bytes": bytes(range(256)) * 4,
    "truncated frame": b"\x00\x00\x01\x00" + b"\x00\x12\x00\x03",
    "2 GiB frame": SIZE_PREFIX.pack(2**31 - 1) + b"\x00" * 64,
    "negative size": SIZE_PREFIX.pack(-5),
    "unknown API key": framed(struct.pack(">hhih", 999, 0, 1, -1)),
    "unsupported version": unsupported_version_request(),
    "header only": framed(struct.pack(">hh", 0, 9)),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_closes_only_that_connection(shared_broker, name):
    received = send_and_read(shared_broker.port, BAD_INPUTS[name], close_write=True)
    assert received == b""
    # The broker is still there and answering.
    response = send_and_read_one(shared_broker.port, request(ApiKey.API_VERSIONS, 3, {
        "client_software_name": "t", "client_software_version": "1"}))
    assert response.error_code == ErrorCode.NONE


def send_and_read_one(port: int, data: bytes):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        return read_answer(sock)[1]


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


MIB = 1 << 20
HALF_FRAMES = 30


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the broker closes `sock` within `seconds` (what it sends meanwhile is ignored)."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            if sock.recv(65536) == b"":
                return True
        except ConnectionResetError:
            return True
        except TimeoutError:
            return False
    return False


def api_versions_request(correlation_id: int, size: int | None = None) -> bytes:
    """An ApiVersions request, padded through its client name to a frame of `size` bytes if given."""
    body = {"client_software_name": "t", "client_software_version": "1"}
    if size is not None:
        unpadded = len(headers.encode_request(ApiKey.API_VERSIONS, 3, correlation_id, "bad-input-test", body))
        # The compact string's length varint grows by two bytes past 127 and 16383 characters.
        body["client_software_name"] = "t" * (size - unpadded + 1 - 2)
    frame_bytes = request(ApiKey.API_VERSIONS, 3, body, correlation_id)
    assert size is None or len(frame_bytes) == 4 + size
    return frame_bytes


def read_answer(sock: socket.socket, timeout: float = 10):
    """Header and body of the ApiVersions v3 response that is the only answer outstanding on `sock`."""
    sock.settimeout(timeout)
    return headers.decode_response(WireConnection(sock).receive_frame(), ApiKey.API_VERSIONS, 3)


def test_half_sent_huge_frames_cost_what_was_sent_and_are_closed_after_the_read_timeout(tmp_path):
    with BrokerProcess(tmp_path / "data", "--request-read-timeout-ms", "1000") as broker:
        before = peak_resident_bytes(broker.process.pid)
        attackers = [socket.create_connection(("127.0.0.1", broker.port), timeout=10) for _ in range(HALF_FRAMES)]
        try:
            for sock in attackers:
                # Claims 100 MiB (the largest request allowed), sends 1 KiB of it and stops.
                sock.sendall(SIZE_PREFIX.pack(100 * MIB) + b"\x00" * 1024)
            # Small requests never wait behind the large ones holding or waiting for the budget.
            assert send_and_read_one(broker.port, api_versions_request(7)).error_code == ErrorCode.NONE
            assert all(closed_within(sock, 20) for sock in attackers)
        finally:
            for sock in attackers:
                sock.close()
        grown = peak_resident_bytes(broker.process.pid) - before
        assert grown < 30 * MIB, f"peak resident memory grew by {grown / MIB:.0f} MiB"
        assert broker.process.poll() is None


def test_the_request_read_timeout_closes_frames_begun_but_not_idle_connections(tmp_path):
    with BrokerProcess(tmp_path / "data", "--request-read-timeout-ms", "1000") as broker:
        idle = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        half_prefix = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        half_body = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        try:
            half_prefix.sendall(b"\x00\x00")
            half_body.sendall(api_versions_request(2)[:10])
            assert closed_within(half_prefix, 10)
            assert closed_within(half_body, 10)
            # A connection with nothing begun is subject to connections.max.idle.ms only.
            idle.sendall(api_versions_request(5))
            assert read_answer(idle)[0].correlation_id == 5
        finally:
            for sock in (idle, half_prefix, half_body):
                sock.close()


def test_a_large_request_waits_for_the_request_budget_then_proceeds(tmp_path):
    size = 200_000
    with BrokerProcess(tmp_path / "data", "--queued-max-request-bytes", "300000",
                       "--max-request-bytes", "250000") as broker:
        first = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        second = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
        try:
            large = api_versions_request(2, size)
            # The answer to request 1 comes once the broker has read this send, and so has claimed
            # the budget for the large frame that follows it.
            first.sendall(api_versions_request(1) + large[:1000])
            assert read_answer(first)[0].correlation_id == 1
            # 200,000 more bytes do not fit in the 100,000 left: the second connection waits...
            second.sendall(api_versions_request(3, size))
            second.settimeout(1)
            with pytest.raises(TimeoutError):
                second.recv(1)
            # ... while small requests are still answered...
            assert send_and_read_one(broker.port, api_versions_request(4)).error_code == ErrorCode.NONE
            # ... until the first large request has been answered and its bytes released.
            first.sendall(large[1000:])
            assert read_answer(first)[0].correlation_id == 2
            assert read_answer(second)[0].correlation_id == 3
        finally:
            first.close()
            second.close()
        assert broker.process.poll() is None


def test_five_hundred_slowloris_connections_are_closed_by_the_read_timeout(tmp_path):
    with BrokerProcess(tmp_path / "data", "--request-read-timeout-ms", "2000") as broker:
        dribbled = api_versions_request(1)
        dribblers = {socket.create_connection(("127.0.0.1", broker.port), timeout=10): 0 for _ in range(500)}
        deadline = time.monotonic() + 30
        try:
            # Each sends the next byte of its frame every half second, so none is ever idle for long.
            while dribblers and time.monotonic() < deadline:
                for sock, sent in list(dribblers.items()):
                    try:
                        sock.send(dribbled[sent:sent + 1])
                        dribblers[sock] = sent + 1
                    except OSError:
                        sock.close()
                        del dribblers[sock]
                assert send_and_read_one(broker.port, api_versions_request(2)).error_code == ErrorCode.NONE
                time.sleep(0.5)  # the pace of the attack, not a synchronisation
            assert not dribblers, f"{len(dribblers)} slowloris connections still open after 30 s"
        finally:
            for sock in dribblers:
                sock.close()
        assert broker.process.poll() is None
