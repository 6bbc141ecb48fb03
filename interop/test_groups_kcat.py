"""kcat's balanced consumer (-G, librdkafka's KafkaConsumer) against the real broker process: it
joins a group, reads to the end, commits on exit, and a later run resumes after that commit."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from interop.clients import TIMEOUT_SECONDS, TOPIC, assert_broker_healthy
from interop.group_clients import produce

KCAT = shutil.which("kcat")
pytestmark = pytest.mark.skipif(KCAT is None, reason="kcat is not installed (Debian package kcat)")


def balanced_consume(broker, group: str) -> list[tuple[int, bytes]]:
    """(offset, value) of what one `kcat -G` run reads before it reaches the end and exits."""
    result = subprocess.run(
        [KCAT, "-b", broker.bootstrap, "-G", group, "-e", "-f", "%o\t%s\n", "-X", "auto.offset.reset=earliest",
         "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=500", TOPIC],
        capture_output=True, text=True, timeout=2 * TIMEOUT_SECONDS)
    assert result.returncode == 0, f"kcat -G failed:\n{result.stderr}"
    rows = (line.split("\t") for line in result.stdout.splitlines())
    return [(int(offset), value.encode()) for offset, value in rows]


def test_balanced_consumer_resumes_after_its_commit(broker):
    first = produce(broker, "kcat-group", 5)
    assert balanced_consume(broker, "kcat") == list(enumerate(first))
    second = produce(broker, "kcat-group-more", 3)
    assert balanced_consume(broker, "kcat") == list(enumerate(second, start=5))
    assert balanced_consume(broker, "kcat") == []
    assert_broker_healthy(broker)
