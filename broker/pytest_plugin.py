"""ComLog's pytest plugin, installed with the package (the `pytest11` entry point `comlog`).

Fixtures:
- `comlog_broker`: a broker for the test, with `bootstrap_servers`. One per session (so one per
  pytest-xdist worker), in-process unless `--comlog-broker-process` (or the ini option
  `comlog_broker_process = true`) asks for a `python -m broker` process. A test marked
  `@pytest.mark.comlog_broker("--num-partitions", "3")` gets a broker of its own with those flags.
- `comlog_topic`: a topic of its own for the test, created before it and deleted after it;
  `@pytest.mark.comlog_topic(partitions=3, configs={"cleanup.policy": "compact"})` shapes it.
- `comlog_group_id`: a consumer group id no other test uses.

The session broker's flags are `python -m broker`'s, from the ini option `comlog_broker_args`
(one per line: `--num-partitions=3`).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from typing import TYPE_CHECKING

import pytest

from broker.ready_line import ready_addresses

if TYPE_CHECKING:
    from broker.embedded import EmbeddedBroker

_CONTROL = re.compile(r"control interface: listening on (\S+):(\d+)")
_START_TIMEOUT_SECONDS = 60
_REQUEST_TIMEOUT_SECONDS = 30


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("comlog_broker_args", "flags of the session's ComLog broker, as python -m broker takes them",
                  type="linelist", default=[])
    parser.addini("comlog_broker_process", "run ComLog brokers as python -m broker processes", type="bool",
                  default=False)
    parser.addoption("--comlog-broker-process", action="store_true", default=None,
                     help="run ComLog brokers as python -m broker processes instead of in this one")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "comlog_broker(*flags): a ComLog broker of the test's own, with these flags")
    config.addinivalue_line("markers", "comlog_topic(partitions=1, configs=None): the comlog_topic fixture's shape")


# Flags that say where to listen; the last one also matches the value of `--override listeners=...`.
_LISTENING = ("--listeners", "--override=listeners=", "listeners=")


def _port_flags(flags: list[str]) -> list[str]:
    """A free port, unless the flags give the listeners."""
    return [] if any(flag.startswith(_LISTENING) for flag in flags) else ["--port", "0"]


class BrokerProcess:
    """`python -m broker` on a free port and a temporary data directory, stopped with SIGTERM; its
    log is read by a thread of its own, so that it never blocks on a full pipe. `faults` drives
    its control interface as an embedded broker's faults."""

    def __init__(self, flags: list[str]) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="comlog-"))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "broker", *_port_flags(flags), "--data-dir", str(self.data_dir), "--control-port", "0",
             *flags], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=self.data_dir)
        self.log: list[str] = []
        self._address: str | None = None
        self._control: tuple[str, int] | None = None
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read_log, name="comlog-broker-log", daemon=True)
        self._reader.start()
        if not self._ready.wait(_START_TIMEOUT_SECONDS) or self._address is None:
            self.stop()
            raise RuntimeError("the ComLog broker did not start:\n" + "".join(self.log))
        self.bootstrap_servers = self._address
        from broker.control import ControlClient  # not with the plugin: it imports the broker's modules

        self.faults = ControlClient(*self._control)

    def _read_log(self) -> None:
        for line in self.process.stderr:
            self.log.append(line)
            if self._control is None and (control := _CONTROL.search(line)):
                self._control = control[1], int(control[2])
            if self._address is None and (addresses := ready_addresses(line)):
                _, host, port = addresses[0]
                self._address = f"{host}:{port}"
                self._ready.set()
        self._ready.set()  # it exited

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(_START_TIMEOUT_SECONDS)
        self._reader.join(_START_TIMEOUT_SECONDS)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _start(flags: list[str], as_process: bool) -> EmbeddedBroker | BrokerProcess:
    # Imported here, not with the plugin: every pytest run of an environment with ComLog installed
    # loads the plugin, and the broker's modules take a while to import.
    from broker.config import parse_config
    from broker.embedded import EmbeddedBroker

    if as_process:
        return BrokerProcess(flags)
    # The flags as the command line checks them, into an in-process broker's settings.
    config = parse_config([*_port_flags(flags), *flags], environ={})
    settings = {name: getattr(config, name) for name in type(config).__dataclass_fields__
                if name not in ("port", "data_dir")}
    return EmbeddedBroker(**settings).start()


def _as_process(config: pytest.Config) -> bool:
    chosen = config.getoption("--comlog-broker-process")
    return bool(config.getini("comlog_broker_process") if chosen is None else chosen)


@pytest.fixture(scope="session")
def comlog_session_broker(pytestconfig: pytest.Config) -> Iterator[EmbeddedBroker | BrokerProcess]:
    flags = [arg for line in pytestconfig.getini("comlog_broker_args") for arg in shlex.split(line)]
    broker = _start(flags, _as_process(pytestconfig))
    yield broker
    broker.stop()


@pytest.fixture
def comlog_broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker | BrokerProcess]:
    marker = request.node.get_closest_marker("comlog_broker")
    if marker is None:
        yield request.getfixturevalue("comlog_session_broker")
        return
    broker = _start(list(marker.args), _as_process(request.config))
    yield broker
    broker.stop()


@pytest.fixture
def comlog_topic(request: pytest.FixtureRequest, comlog_broker) -> Iterator[str]:
    marker = request.node.get_closest_marker("comlog_topic")
    shape = marker.kwargs if marker else {}
    name = f"test-{_unique(request)}"
    _create_topic(comlog_broker.bootstrap_servers, name, shape.get("partitions", 1), shape.get("configs") or {})
    yield name
    _delete_topic(comlog_broker.bootstrap_servers, name)


@pytest.fixture
def comlog_group_id(request: pytest.FixtureRequest) -> str:
    return f"group-{_unique(request)}"


def _unique(request: pytest.FixtureRequest) -> str:
    """The test's name made a valid topic name, and a random part no other test shares."""
    stem = re.sub(r"[^a-zA-Z0-9._-]", "-", request.node.name)[:150]
    return f"{stem}-{uuid.uuid4().hex[:12]}"


def _admin_request(bootstrap_servers: str, api_key: int, version: int, body: dict):
    """One request on a connection of its own, through the project's own codecs."""
    from broker.wire_connection import WireConnection  # not with the plugin: it imports the codecs

    host, _, port = bootstrap_servers.rpartition(":")
    with WireConnection.connect(int(port), timeout=_REQUEST_TIMEOUT_SECONDS, client_id=f"comlog-pytest-{os.getpid()}",
                                host=host) as connection:
        return connection.request(api_key, version, body)


def _create_topic(bootstrap_servers: str, name: str, partitions: int, configs: dict[str, str]) -> None:
    from protocol.messages import ApiKey

    response = _admin_request(bootstrap_servers, ApiKey.CREATE_TOPICS, 5, {"topics": [{
        "name": name, "num_partitions": partitions, "replication_factor": -1, "assignments": [],
        "configs": [{"name": key, "value": str(value)} for key, value in configs.items()]}],
        "timeout_ms": _REQUEST_TIMEOUT_SECONDS * 1000, "validate_only": False})
    _check(response.topics[0], f"creating topic {name}")


def _delete_topic(bootstrap_servers: str, name: str) -> None:
    from protocol.messages import ApiKey

    response = _admin_request(bootstrap_servers, ApiKey.DELETE_TOPICS, 5,
                              {"topic_names": [name], "timeout_ms": _REQUEST_TIMEOUT_SECONDS * 1000})
    _check(response.responses[0], f"deleting topic {name}")


def _check(result, doing: str) -> None:
    from protocol.errors import ErrorCode

    if result.error_code != ErrorCode.NONE:
        raise RuntimeError(f"{doing}: {ErrorCode(result.error_code).name}: {result.get('error_message')}")
