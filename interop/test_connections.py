"""Many client connections at once stay cheap for the broker process."""

import socket
import struct

from protocol import headers

API_VERSIONS = 18
CONNECTIONS = 400


def resident_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def api_versions(sock: socket.socket, correlation_id: int) -> int:
    frame = headers.encode_request(API_VERSIONS, 3, correlation_id, "many", {
        "client_software_name": "t", "client_software_version": "1"})
    sock.sendall(struct.pack(">i", len(frame)) + frame)
    size = struct.unpack(">i", sock.recv(4, socket.MSG_WAITALL))[0]
    header, body = headers.decode_response(sock.recv(size, socket.MSG_WAITALL), API_VERSIONS, 3)
    assert header.correlation_id == correlation_id
    return body.error_code


def test_hundreds_of_connections_cost_little_memory(broker):
    sockets = [socket.create_connection(("127.0.0.1", broker.port), timeout=10)]
    assert api_versions(sockets[0], 0) == 0
    before = resident_bytes(broker.process.pid)
    try:
        for i in range(1, CONNECTIONS):
            sockets.append(socket.create_connection(("127.0.0.1", broker.port), timeout=10))
        # Every connection is served, not just accepted.
        assert [api_versions(sock, i) for i, sock in enumerate(sockets)] == [0] * CONNECTIONS
        grown = resident_bytes(broker.process.pid) - before
    finally:
        for sock in sockets:
            sock.close()
    # A connection costs its read-ahead buffer and a trio task: well under 100 KiB each.
    assert grown < CONNECTIONS * 100 * 1024, f"{grown / CONNECTIONS:.0f} bytes per connection"
