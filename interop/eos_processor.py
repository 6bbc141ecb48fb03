"""An exactly-once consume-transform-produce loop with confluent-kafka, run as a process of its own
by interop/test_exactly_once.py while that test kills and restarts the broker under it.

Run as `python eos_processor.py SPEC_JSON`; SPEC has bootstrap, input, output, group,
transactional_id, total (input records to process), batch (records per transaction at most) and
pauses ({"transaction number": stage}). Each transaction copies a batch of input records to the
same partition of the output (value prefixed with "out:") and sends the batch's offsets to the
group in the transaction (send_offsets_to_transaction), as Kafka's exactly-once processing does.

It reports on stdout, one JSON line each: {"paused": n, "stage": s} when transaction n reaches
the stage the spec names ("produced": records flushed, "offsets_sent", "committed"), after which
it waits for a line on stdin; {"committed": records committed so far} after each commit;
{"aborted": n, "error": ...} when a transaction had to be aborted; {"done": counts} at the end.

Errors are handled as librdkafka documents for transactional producers: retriable ones retry the
call, abortable ones (a rebalance, a lost group member after a broker restart) abort the
transaction and rewind the consumer to the group's committed offsets, fatal ones end the process
with an error (none should happen: nothing else uses the transactional id). Only the standard
library and confluent-kafka are imported: this file runs as a script.
"""

from __future__ import annotations

import json
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

# Bounds every wait: the test's whole run stays well under this.
DEADLINE_SECONDS = 120
CALL_TIMEOUT_SECONDS = 30


def report(**event) -> None:
    print(json.dumps(event), flush=True)


class Processor:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.deadline = time.monotonic() + DEADLINE_SECONDS
        # No re-bootstrap when every broker is down (librdkafka's default since 2.10): the producer
        # then kept sending its TxnOffsetCommit to the decommissioned handle of the group
        # coordinator, never reaching the restarted broker, until the transaction timed out.
        common = {"bootstrap.servers": spec["bootstrap"], "reconnect.backoff.ms": 50,
                  "reconnect.backoff.max.ms": 500, "metadata.recovery.strategy": "none"}
        self.consumer = Consumer({**common, "group.id": spec["group"], "isolation.level": "read_committed",
                                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                                  "fetch.wait.max.ms": 100})
        self.producer = Producer({**common, "transactional.id": spec["transactional_id"], "linger.ms": 5})
        self.committed_records = 0
        self.transactions = 0
        self.aborted = 0
        self.retried = 0

    def retrying(self, call, *args):
        """call(*args), again while it fails with a retriable error (the broker is down or restarting)."""
        while True:
            try:
                return call(*args)
            except KafkaException as failure:
                error = failure.args[0]
                if not error.retriable() or time.monotonic() > self.deadline:
                    raise
                self.retried += 1
                # For the test's failure message, which shows the end of stderr.
                print(f"retrying {call.__name__}: {error}", file=sys.stderr, flush=True)

    def pause_at(self, stage: str) -> None:
        if self.spec["pauses"].get(str(self.transactions)) == stage:
            report(paused=self.transactions, stage=stage)
            sys.stdin.readline()

    def rewind(self) -> None:
        """Back to the group's committed offsets, where the aborted transaction's records start again."""
        assignment = self.consumer.assignment()
        if not assignment:
            return
        for partition in self.retrying(self.consumer.committed, assignment, CALL_TIMEOUT_SECONDS):
            offset = partition.offset if partition.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(partition.topic, partition.partition, offset))

    def next_batch(self) -> list:
        messages = self.consumer.consume(num_messages=self.spec["batch"], timeout=0.5)
        batch = []
        for message in messages:
            error = message.error()
            if error is None:
                batch.append(message)
            elif error.fatal():
                raise KafkaException(error)
            # Else the broker is away for a moment (transport errors): the consumer reconnects.
        return batch

    def process(self, batch: list) -> None:
        # The group's generation and member as the records were consumed: if the group rebalanced
        # since, the broker refuses these offsets (KIP-447) and the transaction aborts.
        group_metadata = self.consumer.consumer_group_metadata()
        self.transactions += 1
        self.producer.begin_transaction()
        offsets: dict[int, int] = {}
        for message in batch:
            self.producer.produce(self.spec["output"], key=message.key(), value=b"out:" + message.value(),
                                  partition=message.partition())
            offsets[message.partition()] = message.offset() + 1
        if self.spec["pauses"].get(str(self.transactions)) == "produced":
            self.producer.flush(CALL_TIMEOUT_SECONDS)
        self.pause_at("produced")
        try:
            self.retrying(self.producer.send_offsets_to_transaction,
                          [TopicPartition(self.spec["input"], partition, offset) for partition, offset in offsets.items()],
                          group_metadata, CALL_TIMEOUT_SECONDS)
            self.pause_at("offsets_sent")
            self.retrying(self.producer.commit_transaction, CALL_TIMEOUT_SECONDS)
        except KafkaException as failure:
            error = failure.args[0]
            if not error.txn_requires_abort():
                raise
            self.retrying(self.producer.abort_transaction, CALL_TIMEOUT_SECONDS)
            self.aborted += 1
            report(aborted=self.transactions, error=error.str())
            self.rewind()
            return
        self.committed_records += len(batch)
        report(committed=self.committed_records)
        self.pause_at("committed")

    def run(self) -> None:
        self.retrying(self.producer.init_transactions, CALL_TIMEOUT_SECONDS)
        self.consumer.subscribe([self.spec["input"]])
        # Records committed by aborted-then-redone transactions are counted once each, so this
        # reaches the total exactly when every input record has been committed once.
        while self.committed_records < self.spec["total"]:
            if time.monotonic() > self.deadline:
                raise TimeoutError(f"committed {self.committed_records} of {self.spec['total']} records in time")
            batch = self.next_batch()
            if batch:
                self.process(batch)
        report(done={"transactions": self.transactions, "aborted": self.aborted, "retried": self.retried})
        self.consumer.close()
        self.producer.flush(CALL_TIMEOUT_SECONDS)


if __name__ == "__main__":
    Processor(json.loads(sys.argv[1])).run()
