"""listeners, advertised.listeners and listener.security.protocol.map, as parse_config takes them
from the properties file, --override and the flags; and a broker process started from a file."""

import os
import queue
import signal
import subprocess
import sys
import threading

import pytest

from broker.config import BrokerConfig, parse_config
from broker.listeners import Listener
from broker.ready_line import ready_addresses, ready_line
from broker.wire_connection import WireConnection
from protocol.messages import ApiKey


def _config(tmp_path, text: str, *argv: str) -> BrokerConfig:
    path = tmp_path / "server.properties"
    path.write_text(text)
    return parse_config(["--config", str(path), *argv], environ={})


def _refused(tmp_path, text: str, capsys, *argv: str, environ=None) -> str:
    path = tmp_path / "server.properties"
    path.write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["--config", str(path), *argv], environ=environ or {})
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1].partition(": error: ")[2]


def test_listeners_with_the_default_protocol_map(tmp_path):
    config = _config(tmp_path, "listeners=PLAINTEXT://127.0.0.1:9092, sasl_ssl://kafka.local:9093,"
                               "SSL://[::1]:0,SASL_PLAINTEXT://localhost:0\n")
    assert config.listeners == (
        Listener("PLAINTEXT", "PLAINTEXT", "127.0.0.1", 9092),
        Listener("SASL_SSL", "SASL_SSL", "kafka.local", 9093),
        Listener("SSL", "SSL", "::1", 0),
        Listener("SASL_PLAINTEXT", "SASL_PLAINTEXT", "localhost", 0),
    )
    assert config.effective_listeners == config.listeners
    # host and port are the first listener's, for the code that knows one listener.
    assert (config.host, config.port, config.advertised_address) == ("127.0.0.1", 9092, ("127.0.0.1", 9092))
    assert [(l.tls, l.sasl) for l in config.listeners] == [(False, False), (True, True), (True, False), (False, True)]


def test_named_listeners_with_a_protocol_map_and_advertised_listeners(tmp_path):
    config = _config(tmp_path, "listeners=INTERNAL://:9092,EXTERNAL://0.0.0.0:9093,LOCAL://127.0.0.1:0\n"
                               "listener.security.protocol.map=INTERNAL:PLAINTEXT, external:SASL_SSL,LOCAL:SSL\n"
                               "advertised.listeners=INTERNAL://broker.internal:19092,EXTERNAL://kafka.example.com:443,"
                               "LOCAL://localhost:0\n")
    assert config.listeners == (
        Listener("INTERNAL", "PLAINTEXT", "", 9092, "broker.internal", 19092),
        Listener("EXTERNAL", "SASL_SSL", "0.0.0.0", 9093, "kafka.example.com", 443),
        # An advertised port 0: the port the listener is bound to.
        Listener("LOCAL", "SSL", "127.0.0.1", 0, "localhost", None),
    )
    assert config.advertised_address == ("broker.internal", 19092)


def test_a_listener_not_advertised_advertises_itself(tmp_path):
    config = _config(tmp_path, "listeners=PLAINTEXT://127.0.0.1:9092,SSL://[::]:9093\n"
                               "advertised.listeners=SSL://[2001:db8::1]:9093\n")
    assert config.listeners == (Listener("PLAINTEXT", "PLAINTEXT", "127.0.0.1", 9092),
                                Listener("SSL", "SSL", "::", 9093, "2001:db8::1", 9093))


def test_one_ipv4_and_one_ipv6_address_may_share_a_port_and_port_0_is_never_shared(tmp_path):
    config = _config(tmp_path, "listeners=PLAINTEXT://127.0.0.1:9092,SSL://[::1]:9092,SASL_SSL://127.0.0.1:0,"
                               "SASL_PLAINTEXT://127.0.0.1:0\n")
    assert [l.port for l in config.listeners] == [9092, 9092, 0, 0]


def test_listeners_as_a_flag_an_override_and_an_environment_twin(tmp_path):
    flagged = parse_config(["--listeners", "SSL://127.0.0.1:9093", "--advertised-listeners", "SSL://kafka:9093"], {})
    assert flagged.listeners == (Listener("SSL", "SSL", "127.0.0.1", 9093, "kafka", 9093),)
    overridden = _config(tmp_path, "listeners=PLAINTEXT://127.0.0.1:9092\n", "--override",
                         "listeners=A://127.0.0.1:1,B://127.0.0.1:2", "--override",
                         "listener.security.protocol.map=A:SSL,B:PLAINTEXT")
    assert [(l.name, l.security_protocol, l.port) for l in overridden.listeners] == [
        ("A", "SSL", 1), ("B", "PLAINTEXT", 2)]
    environment = parse_config([], {"COMLOG_LISTENERS": "SASL_PLAINTEXT://127.0.0.1:9094"})
    assert environment.listeners == (Listener("SASL_PLAINTEXT", "SASL_PLAINTEXT", "127.0.0.1", 9094),)
    assert environment.port == 9094


def test_without_listeners_the_flags_make_one_plaintext_listener():
    config = parse_config(["--host", "0.0.0.0", "--port", "0", "--advertised-host", "kafka",
                           "--advertised-port", "1"], {})
    assert config.listeners == ()
    assert config.effective_listeners == (Listener("PLAINTEXT", "PLAINTEXT", "0.0.0.0", 0, "kafka", 1),)


def test_kafkas_controller_listeners_are_left_out(tmp_path):
    # Kafka's own config/kraft/server.properties names a KRaft controller listener, which a single
    # broker without a quorum does not open.
    config = _config(tmp_path, "process.roles=broker,controller\ncontroller.listener.names=CONTROLLER\n"
                               "listeners=PLAINTEXT://:9092,CONTROLLER://:9093\n"
                               "advertised.listeners=PLAINTEXT://localhost:9092,CONTROLLER://localhost:9093\n"
                               "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT\n")
    assert config.listeners == (Listener("PLAINTEXT", "PLAINTEXT", "", 9092, "localhost", 9092),)


@pytest.mark.parametrize("text, message", [
    ("listeners=PLAINTEXT:/127.0.0.1:9092",
     "listeners: unable to parse 'PLAINTEXT:/127.0.0.1:9092' as NAME://host:port"),
    ("listeners=PLAINTEXT://127.0.0.1",
     "listeners: unable to parse 'PLAINTEXT://127.0.0.1' as NAME://host:port"),
    ("listeners=PLAINTEXT://127.0.0.1:port", "listeners: unable to parse"),
    ("listeners=PLAINTEXT://127.0.0.1:70000", "listeners: port of listener PLAINTEXT must be 0-65535, got 70000"),
    ("listeners=PLAINTEXT://127.0.0.1:-1", "listeners: port of listener PLAINTEXT must be 0-65535, got -1"),
    ("listeners=INTERNAL://127.0.0.1:9092",
     "listeners: no security protocol defined for listener INTERNAL: name it after one"),
    # A map given replaces Kafka's default one, as in Kafka.
    ("listeners=PLAINTEXT://127.0.0.1:9092\nlistener.security.protocol.map=INTERNAL:PLAINTEXT",
     "listeners: no security protocol defined for listener PLAINTEXT"),
    ("listeners=PLAINTEXT://127.0.0.1:1,plaintext://127.0.0.1:2",
     "listeners: each listener must have a different name, PLAINTEXT is given twice"),
    ("listeners=PLAINTEXT://127.0.0.1:9092,SSL://localhost:9092",
     "listeners: each listener must have a different port unless one listens on an IPv4 address and the other "
     "on an IPv6 one: PLAINTEXT, SSL share port 9092"),
    ("listeners=PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.2:9092",
     "listeners: each listener must have a different port"),
    ("listeners=", "listeners: must name at least one listener"),
    ("listeners=PLAINTEXT://127.0.0.1:1\nlistener.security.protocol.map=PLAINTEXT",
     "listener.security.protocol.map: expected NAME:PROTOCOL items separated by commas, got 'PLAINTEXT'"),
    ("listeners=A://127.0.0.1:1\nlistener.security.protocol.map=A:TLS",
     "listener.security.protocol.map: invalid security protocol 'TLS' for listener A: must be one of PLAINTEXT, "
     "SSL, SASL_PLAINTEXT, SASL_SSL"),
    ("listeners=PLAINTEXT://127.0.0.1:1\nadvertised.listeners=SSL://kafka:1",
     "advertised.listeners: SSL is not a listener of listeners (PLAINTEXT)"),
    ("listeners=PLAINTEXT://127.0.0.1:1\nadvertised.listeners=PLAINTEXT//kafka:1",
     "advertised.listeners: unable to parse"),
    ("listeners=PLAINTEXT://0.0.0.0:9092",
     "advertised.listeners: listener PLAINTEXT cannot advertise the nonroutable meta-address 0.0.0.0: give it a "
     "routable host in advertised.listeners"),
    ("listeners=PLAINTEXT://127.0.0.1:9092,SSL://[::]:9093", "advertised.listeners: listener SSL cannot advertise "
                                                              "the nonroutable meta-address ::"),
    ("listeners=PLAINTEXT://:9092", "advertised.listeners: listener PLAINTEXT cannot advertise the nonroutable "
                                    "meta-address (empty host)"),
    ("listeners=PLAINTEXT://127.0.0.1:9092\nadvertised.listeners=PLAINTEXT://0.0.0.0:9092",
     "advertised.listeners: listener PLAINTEXT cannot advertise the nonroutable meta-address 0.0.0.0"),
    ("advertised.listeners=PLAINTEXT://kafka:9092", "advertised.listeners: needs listeners"),
    ("listeners=SASL_SSL://127.0.0.1:9093\nsasl.enabled.mechanisms=",
     "sasl.enabled.mechanisms: must name a mechanism for the SASL listener SASL_SSL"),
])
def test_bad_listener_settings_are_refused_naming_the_property_and_the_reason(text, message, tmp_path, capsys):
    assert _refused(tmp_path, text + "\n", capsys).startswith(message)


@pytest.mark.parametrize("argv, environ, flag", [
    (["--host", "127.0.0.1"], {}, "--host"),
    (["--port", "9092"], {}, "--port"),
    (["--advertised-host", "kafka"], {}, "--advertised-host"),
    ([], {"COMLOG_PORT": "9092"}, "COMLOG_PORT"),
])
def test_the_single_listener_flags_and_listeners_are_refused_together(argv, environ, flag, tmp_path, capsys):
    assert _refused(tmp_path, "listeners=PLAINTEXT://127.0.0.1:9092\n", capsys, *argv, environ=environ) == (
        f"{flag}: both it and listeners say where to listen: give listeners only (and advertised.listeners for "
        "the address clients are given)")
    with pytest.raises(SystemExit):
        parse_config(["--listeners", "PLAINTEXT://127.0.0.1:9092", *argv], environ)


def test_the_flag_names_itself_in_errors(capsys):
    with pytest.raises(SystemExit):
        parse_config(["--listeners", "PLAINTEXT://127.0.0.1:x"], {})
    assert "error: --listeners: unable to parse" in capsys.readouterr().err


def test_the_ready_line_gives_back_each_listener_in_order():
    addresses = [("PLAINTEXT", "127.0.0.1", 9092), ("SASL_SSL", "::1", 9093), ("INTERNAL", "broker.local", 0)]
    line = ready_line(addresses, "/tmp/data, dir", "comlog")
    assert line.startswith("ready: listening on PLAINTEXT://127.0.0.1:9092, SASL_SSL://[::1]:9093, ")
    # As a log line shows it, after the logger's own prefix.
    assert ready_addresses(f"2026-12-03 20:00:00,000 INFO broker: {line}\n") == [
        ("PLAINTEXT", "127.0.0.1", 9092), ("SASL_SSL", "[::1]", 9093), ("INTERNAL", "broker.local", 0)]
    assert ready_addresses("control interface: listening on 127.0.0.1:9999") is None


def test_a_broker_process_starts_from_a_properties_file_with_two_listeners(tmp_path):
    (tmp_path / "server.properties").write_text(
        "# two plaintext listeners on free ports\n"
        "listeners=PLAINTEXT://127.0.0.1:0,INTERNAL://127.0.0.1:0\n"
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT\n"
        f"log.dirs={tmp_path / 'data'}\n"
        "num.partitions=2\n"
        "process.roles=broker\n"
        "unknown.setting=1\n")
    process = subprocess.Popen([sys.executable, "-m", "broker", "--config", str(tmp_path / "server.properties")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stderr] + [lines.put(None)],
                              daemon=True)
    reader.start()
    log = []
    try:
        while (line := lines.get(timeout=60)) is not None and not ready_addresses(line):
            log.append(line)
        assert line is not None, "".join(log)
        addresses = ready_addresses(line)
        assert [name for name, _, _ in addresses] == ["PLAINTEXT", "INTERNAL"]
        assert any("WARNING broker.config: unknown property unknown.setting: ignored" in l for l in log)
        assert any("INFO broker.config: property process.roles has no meaning" in l for l in log)
        for _, _, port in addresses:
            with WireConnection.connect(port, timeout=30) as connection:
                versions = connection.request(ApiKey.API_VERSIONS, 3, {"client_software_name": "t",
                                                                      "client_software_version": "1"})
            assert versions["error_code"] == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGTERM)
        assert process.wait(60) == 0
        reader.join(60)
