"""A Python Kafka client in a process of its own, driven one JSON request per line on stdin and
answering one JSON line on stdout, so that a test can run transactions step by step and SIGKILL
the client in the middle of one (interop/txn_clients.py drives it; interop/js/driver.js is the
KafkaJS twin of this protocol).

Run as `python txn_driver.py CLIENT BOOTSTRAP` with CLIENT one of confluent-kafka, kafka-python,
aiokafka. Requests are {"op": NAME, ...arguments}; answers {"ok": true, "result": ...} or
{"ok": false, "error": {"name", "code", "fatal", "message"}}. Ops:
  producer(name, transactional_id, transaction_timeout_ms=None)  create it and init_transactions
  begin(name) / commit(name) / abort(name) / close(name)
  send(name, records=[[topic, partition, value], ...])  produce, flush; the offsets
  send_offsets(name, group, offsets=[[topic, partition, offset], ...])
  consume(group, isolation, partitions=[[topic, partition], ...], until=[[topic, partition, value]],
          timeout_s)  read from the beginning until every `until` record was seen or the time is up;
          {"topic:partition": [values in offset order]}. kafka-python and aiokafka read without a
          group; confluent-kafka's consumer needs a group id (it commits nothing); KafkaJS joins it.
Values are UTF-8 strings. Only the standard library and the named client are imported, because
this file runs as a script, outside the test process and its sys.path.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

# Every wait inside a client call is bounded by this; the test side bounds each request as well.
TIMEOUT_SECONDS = 15
TIMEOUT_MS = TIMEOUT_SECONDS * 1000


def _key(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


class _Reader:
    """Collects consumed values per partition until every awaited record has been seen."""

    def __init__(self, partitions, until) -> None:
        self.seen: dict[str, list[str]] = {_key(topic, partition): [] for topic, partition in partitions}
        self.missing = {(_key(topic, partition), value) for topic, partition, value in until}

    def add(self, topic: str, partition: int, value: bytes | None) -> None:
        text = None if value is None else value.decode()
        key = _key(topic, partition)
        self.seen.setdefault(key, []).append(text)
        self.missing.discard((key, text))

    @property
    def done(self) -> bool:
        return not self.missing


def _described_by_class(error: BaseException, base: type) -> dict | None:
    """kafka-python and aiokafka name each broker error by a class whose `message` is Kafka's code name."""
    if isinstance(error, base):
        return {"name": type(error).__name__, "code": getattr(error, "message", None), "fatal": None,
                "message": str(error)}
    return None


class _Client:
    """What every client keeps: its module, the bootstrap address and its producers by name; `call`
    runs an op as the method of that name."""

    def __init__(self, kafka, bootstrap: str) -> None:
        self.kafka = kafka
        self.bootstrap = bootstrap
        self.producers = {}

    def call(self, op: str, arguments: dict):
        return getattr(self, op)(**arguments)


class ConfluentKafka(_Client):
    def __init__(self, bootstrap: str) -> None:
        import confluent_kafka
        super().__init__(confluent_kafka, bootstrap)

    def _common(self) -> dict:
        return {"bootstrap.servers": self.bootstrap, "socket.timeout.ms": TIMEOUT_MS,
                "reconnect.backoff.max.ms": 500}

    def producer(self, name, transactional_id, transaction_timeout_ms=None):
        config = {**self._common(), "transactional.id": transactional_id, "linger.ms": 5,
                  "message.timeout.ms": TIMEOUT_MS}
        if transaction_timeout_ms is not None:
            # librdkafka requires its socket and message timeouts within the transaction's.
            config.update({"transaction.timeout.ms": transaction_timeout_ms,
                           "socket.timeout.ms": min(TIMEOUT_MS, transaction_timeout_ms),
                           "message.timeout.ms": min(TIMEOUT_MS, transaction_timeout_ms)})
        producer = self.producers[name] = self.kafka.Producer(config)
        producer.init_transactions(TIMEOUT_SECONDS)

    def begin(self, name):
        self.producers[name].begin_transaction()

    def send(self, name, records):
        producer = self.producers[name]
        reports = []
        for topic, partition, value in records:
            producer.produce(topic, value=value.encode(), partition=partition,
                             on_delivery=lambda error, message: reports.append((error, message.offset())))
        producer.flush(TIMEOUT_SECONDS)
        errors = [error for error, _ in reports if error is not None]
        if errors:
            raise self.kafka.KafkaException(errors[0])
        if len(reports) != len(records):
            raise TimeoutError(f"{len(records) - len(reports)} records left undelivered")
        return [offset for _, offset in reports]

    def send_offsets(self, name, group, offsets):
        # A consumer that never joins: its metadata has generation -1 and no member id, which the
        # coordinator accepts without the KIP-447 member checks.
        consumer = self.kafka.Consumer({**self._common(), "group.id": group})
        try:
            self.producers[name].send_offsets_to_transaction(
                [self.kafka.TopicPartition(topic, partition, offset) for topic, partition, offset in offsets],
                consumer.consumer_group_metadata(), TIMEOUT_SECONDS)
        finally:
            consumer.close()

    def commit(self, name):
        self.producers[name].commit_transaction(TIMEOUT_SECONDS)

    def abort(self, name):
        self.producers[name].abort_transaction(TIMEOUT_SECONDS)

    def close(self, name):
        self.producers.pop(name).flush(TIMEOUT_SECONDS)

    def consume(self, group, isolation, partitions, until, timeout_s):
        consumer = self.kafka.Consumer({**self._common(), "group.id": group, "isolation.level": isolation,
                                        "enable.auto.commit": False, "fetch.wait.max.ms": 100})
        reader = _Reader(partitions, until)
        deadline = time.monotonic() + timeout_s
        try:
            consumer.assign([self.kafka.TopicPartition(topic, partition, self.kafka.OFFSET_BEGINNING)
                             for topic, partition in partitions])
            while not reader.done and time.monotonic() < deadline:
                message = consumer.poll(0.2)
                if message is None:
                    continue
                if message.error() is not None:
                    raise self.kafka.KafkaException(message.error())
                reader.add(message.topic(), message.partition(), message.value())
        finally:
            consumer.close()
        return reader.seen

    def describe(self, error: BaseException) -> dict | None:
        # A fatal error is raised as the KafkaError itself by the poll inside flush(), and then as
        # the cause of a SystemError when a delivery callback runs with it pending.
        while error is not None:
            if isinstance(error, self.kafka.KafkaException) and isinstance(error.args[0], self.kafka.KafkaError):
                error = error.args[0]
            if isinstance(error, self.kafka.KafkaError):
                return {"name": "KafkaError", "code": error.name(), "fatal": error.fatal(), "message": error.str()}
            error = error.__cause__ or error.__context__
        return None


class KafkaPython(_Client):
    def __init__(self, bootstrap: str) -> None:
        import kafka.errors
        super().__init__(kafka, bootstrap)

    def producer(self, name, transactional_id, transaction_timeout_ms=None):
        config = {"transactional_id": transactional_id, "linger_ms": 5}
        if transaction_timeout_ms is not None:
            config["transaction_timeout_ms"] = transaction_timeout_ms
        producer = self.producers[name] = self.kafka.KafkaProducer(
            bootstrap_servers=self.bootstrap, request_timeout_ms=TIMEOUT_MS, max_block_ms=TIMEOUT_MS, **config)
        producer.init_transactions()

    def begin(self, name):
        self.producers[name].begin_transaction()

    def send(self, name, records):
        producer = self.producers[name]
        futures = [producer.send(topic, value=value.encode(), partition=partition)
                   for topic, partition, value in records]
        producer.flush(timeout=TIMEOUT_SECONDS)
        return [future.get(timeout=TIMEOUT_SECONDS).offset for future in futures]

    def send_offsets(self, name, group, offsets):
        from kafka.structs import OffsetAndMetadata
        self.producers[name].send_offsets_to_transaction(
            {self.kafka.TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
             for topic, partition, offset in offsets}, group)

    def commit(self, name):
        self.producers[name].commit_transaction()

    def abort(self, name):
        self.producers[name].abort_transaction()

    def close(self, name):
        self.producers.pop(name).close(timeout=TIMEOUT_SECONDS)

    def consume(self, group, isolation, partitions, until, timeout_s):
        consumer = self.kafka.KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                            enable_auto_commit=False, isolation_level=isolation,
                                            request_timeout_ms=TIMEOUT_MS, fetch_max_wait_ms=100)
        reader = _Reader(partitions, until)
        deadline = time.monotonic() + timeout_s
        try:
            assigned = [self.kafka.TopicPartition(topic, partition) for topic, partition in partitions]
            consumer.assign(assigned)
            consumer.seek_to_beginning(*assigned)
            while not reader.done and time.monotonic() < deadline:
                for partition, records in consumer.poll(timeout_ms=200).items():
                    for record in records:
                        reader.add(partition.topic, partition.partition, record.value)
        finally:
            consumer.close()
        return reader.seen

    def describe(self, error: BaseException) -> dict | None:
        return _described_by_class(error, self.kafka.errors.KafkaError)


class AioKafka(_Client):
    """aiokafka's calls run to completion one at a time on one event loop that lives as long as the driver."""

    def __init__(self, bootstrap: str) -> None:
        import aiokafka.errors
        super().__init__(aiokafka, bootstrap)
        self.loop = asyncio.new_event_loop()

    async def producer(self, name, transactional_id, transaction_timeout_ms=None):
        config = {"transactional_id": transactional_id, "linger_ms": 5}
        if transaction_timeout_ms is not None:
            config["transaction_timeout_ms"] = transaction_timeout_ms
        producer = self.producers[name] = self.kafka.AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, request_timeout_ms=TIMEOUT_MS, **config)
        # start() is where aiokafka initialises the transactional producer id.
        await producer.start()

    async def begin(self, name):
        await self.producers[name].begin_transaction()

    async def send(self, name, records):
        producer = self.producers[name]
        futures = [await producer.send(topic, value.encode(), partition=partition)
                   for topic, partition, value in records]
        return [(await future).offset for future in futures]

    async def send_offsets(self, name, group, offsets):
        await self.producers[name].send_offsets_to_transaction(
            {self.kafka.TopicPartition(topic, partition): offset for topic, partition, offset in offsets}, group)

    async def commit(self, name):
        await self.producers[name].commit_transaction()

    async def abort(self, name):
        await self.producers[name].abort_transaction()

    async def close(self, name):
        await self.producers.pop(name).stop()

    async def consume(self, group, isolation, partitions, until, timeout_s):
        consumer = self.kafka.AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                               enable_auto_commit=False, isolation_level=isolation,
                                               request_timeout_ms=TIMEOUT_MS, fetch_max_wait_ms=100)
        await consumer.start()
        reader = _Reader(partitions, until)
        deadline = self.loop.time() + timeout_s
        try:
            assigned = [self.kafka.TopicPartition(topic, partition) for topic, partition in partitions]
            consumer.assign(assigned)
            await consumer.seek_to_beginning(*assigned)
            while not reader.done and self.loop.time() < deadline:
                for partition, records in (await consumer.getmany(timeout_ms=200)).items():
                    for record in records:
                        reader.add(partition.topic, partition.partition, record.value)
        finally:
            await consumer.stop()
        return reader.seen

    def call(self, op: str, arguments: dict):
        return self.loop.run_until_complete(asyncio.wait_for(getattr(self, op)(**arguments), 3 * TIMEOUT_SECONDS))

    def describe(self, error: BaseException) -> dict | None:
        return _described_by_class(error, self.kafka.errors.KafkaError)


CLIENTS = {"confluent-kafka": ConfluentKafka, "kafka-python": KafkaPython, "aiokafka": AioKafka}


def main() -> None:
    client_name, bootstrap = sys.argv[1:]
    client = CLIENTS[client_name](bootstrap)
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        try:
            answer = {"ok": True, "result": client.call(op, request)}
        except Exception as error:  # every failure goes back to the test, which judges it
            described = client.describe(error) or {"name": type(error).__name__, "code": None, "fatal": None,
                                                   "message": str(error)}
            answer = {"ok": False, "error": described}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
