"""kcat (Debian's package, built on librdkafka 2.0.2) against the real broker process: metadata
listing, producing with each codec, consuming from the beginning."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from interop.broker_process import BrokerProcess
from interop.clients import (LIBRDKAFKA_CODECS, TIMEOUT_SECONDS, TOPIC, compressible_value, consume,
                             log_end_offset, stored_batches)

KCAT = shutil.which("kcat")
pytestmark = pytest.mark.skipif(KCAT is None, reason="kcat is not installed (Debian package kcat)")
HEADERS = [("trace", b"kcat-trace"), ("origin", b"kcat")]


def kcat(broker, *args: str, stdin: str = "") -> str:
    result = subprocess.run([KCAT, "-b", broker.bootstrap, *args], input=stdin, capture_output=True, text=True,
                            timeout=2 * TIMEOUT_SECONDS)
    assert result.returncode == 0, f"kcat {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def kcat_consume(broker, start: str) -> list[tuple[int, str, str, str]]:
    """(offset, key, value, headers) of every record from `start` to the end, as kcat prints them."""
    output = kcat(broker, "-C", "-t", TOPIC, "-o", start, "-e", "-f", "%o\t%k\t%s\t%h\n")
    rows = [line.split("\t") for line in output.splitlines()]
    return [(int(offset), key, value, headers) for offset, key, value, headers in rows]


def test_metadata_listing(shared_broker):
    listing = json.loads(kcat(shared_broker, "-L", "-J"))
    assert listing["controllerid"] == 1
    assert listing["brokers"] == [{"id": 1, "name": shared_broker.bootstrap}]
    assert listing["topics"] == [{"topic": TOPIC, "partitions": [
        {"partition": 0, "leader": 1, "replicas": [{"id": 1}], "isrs": [{"id": 1}]}]}]
    # Asking for an unknown topic creates it, as Kafka does with auto.create.topics.enable.
    (created,) = json.loads(kcat(shared_broker, "-L", "-J", "-t", "new-topic"))["topics"]
    assert created == {"topic": "new-topic", "partitions": [
        {"partition": 0, "leader": 1, "replicas": [{"id": 1}], "isrs": [{"id": 1}]}]}


def test_metadata_of_an_unknown_topic_without_auto_creation(tmp_path):
    with BrokerProcess(tmp_path / "data", "--auto-create-topics", "false") as broker:
        (unknown,) = json.loads(kcat(broker, "-L", "-J", "-t", "no-such-topic"))["topics"]
    assert unknown == {"topic": "no-such-topic", "error": "Broker: Unknown topic or partition", "partitions": []}


@pytest.mark.parametrize("codec", LIBRDKAFKA_CODECS)
def test_produce_with_codec_and_consume(shared_broker, codec):
    start = log_end_offset(shared_broker)
    rows = [(f"key-{i}", compressible_value(f"kcat-{codec}", i).decode()) for i in range(5)]
    header_args = [arg for name, value in HEADERS for arg in ("-H", f"{name}={value.decode()}")]
    kcat(shared_broker, "-P", "-t", TOPIC, "-z", codec, "-K", ":", *header_args,
         stdin="".join(f"{key}:{value}\n" for key, value in rows))
    headers_text = ",".join(f"{name}={value.decode()}" for name, value in HEADERS)
    assert kcat_consume(shared_broker, str(start)) == \
        [(start + i, key, value, headers_text) for i, (key, value) in enumerate(rows)]
    batches = stored_batches(shared_broker, start, start + len(rows))
    assert {batch.codec for batch in batches} == {codec}
    assert [value for batch in batches for value in batch.values] == [value.encode() for _, value in rows]


def test_consume_from_beginning_matches_kafka_python(shared_broker):
    kcat(shared_broker, "-P", "-t", TOPIC, "-K", ":", stdin="first:one\nsecond:two\n")
    end = log_end_offset(shared_broker)
    printed = kcat_consume(shared_broker, "beginning")
    assert [offset for offset, *_ in printed] == list(range(end))
    assert printed[-2:] == [(end - 2, "first", "one", ""), (end - 1, "second", "two", "")]
    expected = [(r.offset, r.key.decode(), r.value.decode()) for r in consume(shared_broker, 0, end)]
    assert [(offset, key, value) for offset, key, value, _ in printed] == expected
