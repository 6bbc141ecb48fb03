"""The README's Security examples run as written: its openssl commands make the certificates, each
server.properties starts a real broker process (`--config`, ports 0 for the README's), and each
client's settings produce a record and read it back with confluent-kafka; the ACL example's
admin code then decides what alice may do."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_SECONDS

README = Path(__file__).resolve().parent.parent / "README.md"
_BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)
_ADDRESS = re.compile(r"(?<=:)9\d{3}\b")

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="the README's certificates need openssl")


def _blocks() -> list[tuple[str, str]]:
    text = README.read_text()
    start = text.index("\n## Security\n")
    section = text[start:text.index("\n## ", start + 1)]
    return _BLOCK.findall(section)


BLOCKS = _blocks()
# The listener examples: each properties block with the client settings after it, before ACLs.
EXAMPLES = [(BLOCKS[i][1], BLOCKS[i + 1][1]) for i in range(len(BLOCKS) - 1)
            if BLOCKS[i][0] == "properties" and BLOCKS[i + 1][0] == "python" and "settings = " in BLOCKS[i + 1][1]]
ACL_PROPERTIES, ACL_CODE = next((BLOCKS[i][1], BLOCKS[i + 1][1]) for i in range(len(BLOCKS) - 1)
                                if "authorizer.class.name" in BLOCKS[i][1])


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    """Where the README's commands run: its certificates, then each example's files."""
    here = tmp_path_factory.mktemp("readme-security")
    (shell,) = [text for language, text in BLOCKS if language == "sh"]
    made = subprocess.run(["bash", "-e", "-c", shell], cwd=here, capture_output=True, text=True,
                          timeout=TIMEOUT_SECONDS)
    assert made.returncode == 0, made.stderr
    return here


@pytest.fixture
def directory(certificates, monkeypatch) -> Path:
    """The certificates' directory, the clients' working directory too: the README's paths are
    relative to it."""
    monkeypatch.chdir(certificates)
    return certificates


def _start(directory: Path, properties: str) -> tuple[BrokerProcess, dict[int, int]]:
    """The broker of a properties text with its README ports made free ones; the ports it bound,
    by README port."""
    readme_ports = {int(port): name for name, port in re.findall(r"(\w+)://[^,\s]*:(\d+)",
                                                                 properties.split("listeners=", 1)[1].splitlines()[0])}
    name = f"example-{uuid.uuid4().hex[:8]}"
    config = directory / f"{name}.properties"
    config.write_text(_ADDRESS.sub("0", properties))
    broker = BrokerProcess(directory / name, "--config", str(config), port=None).start()
    return broker, {port: broker.ports[listener] for port, listener in readme_ports.items()}


def _client_settings(code: str, ports: dict[int, int]) -> dict:
    namespace: dict = {}
    exec(_ADDRESS.sub(lambda match: str(ports[int(match.group())]), code), namespace)
    return namespace["settings"]


def _round_trip(settings: dict, topic: str) -> bytes:
    value = uuid.uuid4().bytes
    delivered = []
    producer = Producer({**settings, "acks": "all", "message.timeout.ms": TIMEOUT_SECONDS * 1000})
    producer.produce(topic, value, on_delivery=lambda error, message: delivered.append(error))
    assert producer.flush(TIMEOUT_SECONDS) == 0 and delivered == [None], delivered
    consumer = Consumer({**settings, "group.id": f"{topic}-reader", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        message = consumer.poll(TIMEOUT_SECONDS)
        assert message is not None and message.error() is None, message and message.error()
        return message.value()
    finally:
        consumer.close()


@pytest.mark.parametrize("example", range(len(EXAMPLES)))
def test_each_listener_example_works_as_written(directory, example):
    properties, code = EXAMPLES[example]
    broker, ports = _start(directory, properties)
    try:
        settings = _client_settings(code, ports)
        topic = f"readme-{uuid.uuid4().hex[:8]}"
        assert len(_round_trip(settings, topic)) == 16
        assert "Traceback" not in broker.log_text() and " WARNING " not in broker.log_text(), broker.log_text()
    finally:
        broker.kill()


def test_the_examples_cover_every_listener_type():
    named = {name for properties, _ in EXAMPLES
             for name in re.findall(r"(\w+)://", re.search(r"^listeners=.*", properties, re.M).group())}
    assert named >= {"SSL", "SASL_PLAINTEXT", "SASL_SSL"}


def test_the_acl_example_decides_what_alice_may_do(directory):
    # The SASL_PLAINTEXT example with SCRAM users, and the ACL properties added to it.
    properties, code = next(example for example in EXAMPLES if "comlog.sasl.users" in example[0])
    broker, ports = _start(directory, properties + ACL_PROPERTIES)
    try:
        settings = _client_settings(code, ports)
        exec(ACL_CODE, {"settings": settings})
        assert len(_round_trip(settings, "orders")) == 16
        denied = []
        producer = Producer({**settings, "message.timeout.ms": TIMEOUT_SECONDS * 1000})
        producer.produce("payments", b"not hers", on_delivery=lambda error, message: denied.append(error))
        producer.flush(TIMEOUT_SECONDS)
        assert [error.code() for error in denied] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    finally:
        broker.kill()
