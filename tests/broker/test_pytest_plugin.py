"""ComLog's pytest plugin (broker.pytest_plugin), as a user's test suite meets it: loaded by its
entry point, run through pytester in a pytest of its own, with real clients in the tests."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

# A user's tests: a record through the session's broker, the shape of a marked topic, and a broker
# of a test's own.
USER_TESTS = '''
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

SEEN = []


def partitions(bootstrap_servers, topic):
    metadata = AdminClient({"bootstrap.servers": bootstrap_servers}).list_topics(topic, timeout=30)
    return len(metadata.topics[topic].partitions)


def test_a_record_through_a_fresh_topic(comlog_broker, comlog_topic, comlog_group_id):
    SEEN.append((comlog_broker.bootstrap_servers, comlog_topic, comlog_group_id))
    producer = Producer({"bootstrap.servers": comlog_broker.bootstrap_servers})
    producer.produce(comlog_topic, b"hello")
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": comlog_broker.bootstrap_servers, "group.id": comlog_group_id,
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([comlog_topic])
    message = consumer.poll(30)
    consumer.close()
    assert message is not None and message.value() == b"hello"


@pytest.mark.comlog_topic(partitions=3, configs={"cleanup.policy": "compact"})
def test_a_shaped_topic(comlog_broker, comlog_topic, comlog_group_id):
    SEEN.append((comlog_broker.bootstrap_servers, comlog_topic, comlog_group_id))
    assert partitions(comlog_broker.bootstrap_servers, comlog_topic) == 3


@pytest.mark.comlog_broker("--num-partitions", "5")
def test_a_broker_of_its_own(comlog_broker):
    SEEN.append((comlog_broker.bootstrap_servers, None, None))
    assert partitions(comlog_broker.bootstrap_servers, "auto-created") == 5


def test_faults_the_same_way_in_both_modes(comlog_broker, comlog_topic):
    comlog_broker.faults.inject("PRODUCE", count=2, error="NOT_LEADER_OR_FOLLOWER", topic=comlog_topic)
    producer = Producer({"bootstrap.servers": comlog_broker.bootstrap_servers, "enable.idempotence": True,
                         "retry.backoff.ms": 10})
    producer.produce(comlog_topic, b"retried")
    assert producer.flush(30) == 0
    assert comlog_broker.faults.list() == []


def test_each_test_had_its_own_topic_and_group_and_the_session_one_broker(comlog_broker):
    (first, *_), (second, *_), (own, *_) = SEEN
    assert first == second == comlog_broker.bootstrap_servers != own
    assert SEEN[0][1] != SEEN[1][1] and SEEN[0][2] != SEEN[1][2]
    # The first test's topic is gone.
    topics = AdminClient({"bootstrap.servers": comlog_broker.bootstrap_servers}).list_topics(timeout=30).topics
    assert SEEN[0][1] not in topics
    assert partitions(comlog_broker.bootstrap_servers, "from-the-ini") == 2
'''

INI = """
[pytest]
comlog_broker_args =
    --num-partitions=2
"""


@pytest.mark.parametrize("mode", [[], ["--comlog-broker-process"]], ids=["in-process", "broker-process"])
def test_the_fixtures_in_a_users_suite(pytester, mode):
    pytester.makeini(INI)
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest_subprocess(*mode, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)


def test_each_xdist_worker_has_a_session_broker_of_its_own(pytester):
    # Two tests per worker (loadgroup keeps each pair on one): each records its broker's address
    # in a file named after its worker.
    pytester.makepyfile(test_user='''
import os
import pytest


@pytest.mark.xdist_group("first")
@pytest.mark.parametrize("n", [1, 2])
def test_first(comlog_broker, n):
    with open(os.environ["PYTEST_XDIST_WORKER"] + ".brokers", "a") as seen:
        seen.write(comlog_broker.bootstrap_servers + "\\n")


@pytest.mark.xdist_group("second")
@pytest.mark.parametrize("n", [1, 2])
def test_second(comlog_broker, n):
    with open(os.environ["PYTEST_XDIST_WORKER"] + ".brokers", "a") as seen:
        seen.write(comlog_broker.bootstrap_servers + "\\n")
''')
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)
    seen = {path.stem: set(path.read_text().split()) for path in pytester.path.glob("*.brokers")}
    assert sorted(seen) == ["gw0", "gw1"]
    assert all(len(brokers) == 1 for brokers in seen.values())  # one broker for each worker's session
    assert seen["gw0"] != seen["gw1"]


def test_the_broker_process_can_be_chosen_in_the_ini_file(pytester):
    pytester.makeini(INI + "comlog_broker_process = true\n")
    pytester.makepyfile(test_user='''
import threading

def test_no_broker_thread_here(comlog_broker):
    assert comlog_broker.process.poll() is None
    assert not [t for t in threading.enumerate() if t.name.startswith("comlog-broker ")]
''')
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_bad_broker_flags_fail_the_session_with_the_reason(pytester):
    pytester.makeini("[pytest]\ncomlog_broker_args = --num-partitions=0\n")
    pytester.makepyfile(test_user="def test_needs_a_broker(comlog_broker):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*--num-partitions*must be a positive integer*"])


def readme_examples() -> list[str]:
    """The Python code blocks of the README's "In a test suite" section, in order."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## In a test suite\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.DOTALL)


def test_the_readmes_examples_run_as_written(pytester):
    confluent, kafka_python, aiokafka = readme_examples()[:3]  # the rest are fragments (faults)
    pytester.makepyfile(test_confluent=confluent, test_kafka_python=kafka_python)
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=2)
    script = pytester.makepyfile(aiokafka_example=aiokafka)
    assert pytester.run(sys.executable, script).ret == 0
