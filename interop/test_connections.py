"""Many client connections at once stay cheap for the broker process, and no number of them
stops it: connection limits close the excess, and running out of descriptors only pauses accepting."""

import os
import resource
import socket
import time

from interop.admin_clients import eventually
from broker.wire_connection import WireConnection
from interop.bench.servers import resident_bytes
from interop.broker_process import BrokerProcess
from interop.clients import PARTITION, group_less_consumer, kafka_python_producer, poll_records, send_all
from protocol.messages import ApiKey

CONNECTIONS = 400
ACCEPT_FAILED = "accepting connections failed (Too many open files)"


def api_versions(connection: WireConnection) -> int:
    return connection.request(ApiKey.API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"}).error_code


def test_hundreds_of_connections_cost_little_memory(broker):
    connections = [connect(broker.port)]
    assert api_versions(connections[0]) == 0
    before = resident_bytes(broker.process.pid)
    try:
        for _ in range(1, CONNECTIONS):
            connections.append(connect(broker.port))
        # Every connection is served, not just accepted.
        assert [api_versions(connection) for connection in connections] == [0] * CONNECTIONS
        grown = resident_bytes(broker.process.pid) - before
    finally:
        for connection in connections:
            connection.close()
    # A connection costs its read-ahead buffer and a trio task: well under 100 KiB each.
    assert grown < CONNECTIONS * 100 * 1024, f"{grown / CONNECTIONS:.0f} bytes per connection"


def closed_by_broker(sock: socket.socket) -> bool:
    """Whether the broker closes `sock` without answering (within 10 s; False if it stays open)."""
    sock.settimeout(10)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def connect(port: int, source: str = "127.0.0.1") -> WireConnection:
    return WireConnection.connect(port, timeout=10, source_address=(source, 0))


def served(port: int, source: str = "127.0.0.1") -> bool:
    """Whether a new connection from `source` gets an ApiVersions answer."""
    with connect(port, source) as connection:
        try:
            return api_versions(connection) == 0
        except ConnectionError:
            return False


def test_connections_over_max_connections_are_closed(tmp_path):
    with BrokerProcess(tmp_path / "data", "--max-connections", "3") as broker:
        held = [connect(broker.port) for _ in range(3)]
        try:
            assert [api_versions(connection) for connection in held] == [0, 0, 0]
            with connect(broker.port) as extra:
                assert closed_by_broker(extra.socket)
            held.pop().close()
            # The closed connection's slot is free again once the broker has seen it close.
            eventually(lambda: served(broker.port), "a connection in the freed slot")
        finally:
            for connection in held:
                connection.close()
        assert broker.process.poll() is None
        assert "max.connections (3) reached" in broker.log_text()


def test_connections_over_max_connections_per_ip_are_closed_for_that_address_only(tmp_path):
    with BrokerProcess(tmp_path / "data", "--max-connections-per-ip", "2") as broker:
        held = [connect(broker.port) for _ in range(2)]
        try:
            assert [api_versions(connection) for connection in held] == [0, 0]
            with connect(broker.port) as extra:
                assert closed_by_broker(extra.socket)
            # 127.0.0.2 is another address on loopback, with its own count.
            assert served(broker.port, source="127.0.0.2")
        finally:
            for connection in held:
                connection.close()
        assert "max.connections.per.ip (2) reached for 127.0.0.1" in broker.log_text()


def test_connections_beyond_the_open_file_limit_leave_the_broker_serving(broker):
    pid = broker.process.pid
    # Lower the running broker's descriptor limit to a few over what it has open, so that accept()
    # fails with EMFILE (its max.connections came from the higher limit it started with).
    _, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (len(os.listdir(f"/proc/{pid}/fd")) + 10, hard))
    flood = []
    try:
        # Connections past the limit wait in the listen backlog, unaccepted.
        flood = [connect(broker.port) for _ in range(100)]
        eventually(lambda: ACCEPT_FAILED in broker.log_text(), "the broker to run out of descriptors")
        # Accepting keeps failing for as long as the flood stays: logged once, not per retry.
        failing_since = time.monotonic()
        eventually(lambda: time.monotonic() - failing_since > 3, "three seconds of failing accepts")
        assert broker.log_text().count(ACCEPT_FAILED) == 1
        assert broker.process.poll() is None
    finally:
        for connection in flood:
            connection.close()
    # Once the flood is gone, new clients are served again.
    with kafka_python_producer(broker) as producer:
        offsets = send_all(producer, [b"after-the-flood-%d" % i for i in range(10)])
    with group_less_consumer(broker) as consumer:
        consumer.seek(PARTITION, offsets[0])
        assert [record.value for record in poll_records(consumer, 10)] == [
            b"after-the-flood-%d" % i for i in range(10)]
    assert broker.process.poll() is None
