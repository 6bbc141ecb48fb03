"""The request trace (--trace FILE) of a broker process that real clients talk to: a JSON line per
request with its response, the client software, record data summarised and errors named; and
`python -m broker.request_trace`, which prints it as a table, filtered."""

from __future__ import annotations

import json
import subprocess
import sys

from confluent_kafka import Consumer, Producer
from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError

from interop.broker_process import BrokerProcess
from interop.clients import TIMEOUT_SECONDS, assert_broker_healthy


def test_each_request_and_response_is_a_line_and_the_table_filters_them(tmp_path):
    trace = tmp_path / "trace.jsonl"
    with BrokerProcess(tmp_path / "data", "--trace", str(trace), "--auto-create-topics", "false") as broker:
        producer = Producer({"bootstrap.servers": broker.bootstrap, "client.id": "traced-producer"})
        for n in range(5):
            producer.produce("comlog", value=b"secret payload %d" % n)
        assert producer.flush(TIMEOUT_SECONDS) == 0
        consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "traced",
                             "auto.offset.reset": "earliest"})
        consumer.subscribe(["comlog"])
        assert consumer.poll(TIMEOUT_SECONDS).value() == b"secret payload 0"
        consumer.close()
        # A produce the broker refuses: the topic does not exist and is not created.
        refused = KafkaProducer(bootstrap_servers=broker.bootstrap, client_id="refused", max_block_ms=2000)
        try:
            refused.send("missing", b"x").get(TIMEOUT_SECONDS)
        except KafkaTimeoutError:
            pass  # kafka-python waits for the topic's metadata, which never comes
        refused.close()
        assert_broker_healthy(broker)
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert "secret payload" not in trace.read_text()

    produces = [line for line in lines if line["api"] == "Produce"]
    assert produces and all(line["client"] == "traced-producer" for line in produces)
    assert produces[0]["software"].startswith("confluent-kafka-python ") or produces[0]["software"].startswith(
        "librdkafka ")
    records = produces[0]["request"]["topic_data"][0]["partition_data"][0]["records"]
    assert records["records"] >= 1 and records["bytes"] > 0 and "base_offset" in records
    assert sum(line["request"]["topic_data"][0]["partition_data"][0]["records"]["records"] for line in produces) == 5
    fetched = [line for line in lines if line["api"] == "Fetch"
               and line["response"]["responses"] and line["response"]["responses"][0]["partitions"][0]["records"]]
    assert fetched and fetched[0]["response"]["responses"][0]["partitions"][0]["records"]["bytes"] > 0
    missing = [line for line in lines if line["client"] == "refused" and line["api"] == "Metadata"]
    assert any("UNKNOWN_TOPIC_OR_PARTITION" in line["errors"] for line in missing)
    assert all(line["ms"] >= 0 and line["correlation_id"] >= 0 and line["connection"].startswith("127.0.0.1:")
               for line in lines)

    def table(*filters: str) -> list[str]:
        shown = subprocess.run([sys.executable, "-m", "broker.request_trace", str(trace), *filters],
                               capture_output=True, text=True, check=True, cwd=tmp_path)
        return shown.stdout.splitlines()

    everything = table()
    assert everything[0].split() == ["time", "connection", "client", "api", "corr", "ms", "errors"]
    assert len(everything) == len(lines) + 1
    only_errors = table("--errors")
    # The refused Metadata requests, and others the clients expect (JoinGroup's MEMBER_ID_REQUIRED).
    assert len(only_errors) - 1 == sum(1 for line in lines if line["errors"])
    assert any("UNKNOWN_TOPIC_OR_PARTITION" in row for row in only_errors[1:])
    only_produce = table("--api", "Produce", "--client", "traced-producer")
    assert len(only_produce) == len(produces) + 1 and all("Produce v" in row for row in only_produce[1:])
