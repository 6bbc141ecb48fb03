"""The control interface of a broker process (--control-port): faults injected, listed and
cleared and partitions paused over it, with a real client on the receiving end, and bad commands
answered with their reason."""

from __future__ import annotations

import json
import re
import socket

import pytest
from confluent_kafka import Producer

from broker.control import ControlClient, ControlError
from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_SECONDS, assert_broker_healthy

_CONTROL = re.compile(r"control interface: listening on (\S+):(\d+)")


@pytest.fixture
def broker(tmp_path):
    with BrokerProcess(tmp_path / "data", "--control-port", "0") as broker:
        yield broker


def control_of(broker: BrokerProcess) -> tuple[str, int]:
    host, port = _CONTROL.search(broker.log_text()).groups()
    return host, int(port)


def test_faults_and_pauses_over_the_control_interface(broker):
    control = ControlClient(*control_of(broker))
    fault = control.inject("PRODUCE", count=2, error="NOT_LEADER_OR_FOLLOWER", topic="comlog")
    assert (fault["api"], fault["error"], fault["remaining"]) == ("PRODUCE", "NOT_LEADER_OR_FOLLOWER", 2)
    assert [f["id"] for f in control.list()] == [fault["id"]]
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True, "retry.backoff.ms": 10})
    producer.produce("comlog", b"through two refusals")
    assert producer.flush(TIMEOUT_SECONDS) == 0
    assert control.list() == []
    control.pause_appends("comlog", 0)
    assert control.paused() == [("appends", "comlog", 0)]
    control.inject("FETCH", delay_ms=10)
    control.clear()
    assert (control.list(), control.paused()) == ([], [])


def test_bad_commands_get_their_reason_and_the_connection_stays_usable(broker):
    with pytest.raises(ControlError, match="KeyError: 'NO_SUCH_API'"):
        ControlClient(*control_of(broker)).inject("NO_SUCH_API", error="NONE")
    with socket.create_connection(control_of(broker), timeout=TIMEOUT_SECONDS) as connection:
        replies = connection.makefile("rb")
        for line in (b"not json\n", b"[1, 2]\n", b'{"op": "explode"}\n', b'{"op": "list"}\n'):
            connection.sendall(line)
        answers = [json.loads(replies.readline()) for _ in range(4)]
    assert [a["ok"] for a in answers] == [False, False, False, True]
    assert "unknown command 'explode'" in answers[2]["error"]
    assert_broker_healthy(broker, expected="control interface: listening")
