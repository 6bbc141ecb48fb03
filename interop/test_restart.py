"""The broker process stopped and started again under real clients: nothing acknowledged is lost."""

import signal
import threading

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from interop.broker_process import BrokerProcess

TOPIC = "comlog"
PARTITION = TopicPartition(TOPIC, 0)


def read_all(bootstrap: str, expected_count: int, timeout_s: float = 30) -> list:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=int(timeout_s * 1000),
                             enable_auto_commit=False)
    consumer.assign([PARTITION])
    consumer.seek_to_beginning(PARTITION)
    messages = []
    for message in consumer:
        messages.append(message)
        if len(messages) >= expected_count:
            break
    consumer.close()
    return messages


def test_clean_stop_and_start_keeps_every_record(tmp_path):
    broker = BrokerProcess(tmp_path / "data").start()
    try:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
        for i in range(200):
            producer.send(TOPIC, key=b"%d" % i, value=b"value-%d" % i)
        producer.flush(30)
        producer.close()
        assert broker.stop(signal.SIGTERM) == 0
        assert "stopped: logs closed cleanly" in broker.log_text()

        broker.start()
        messages = read_all(broker.bootstrap, 200)
        assert [m.offset for m in messages] == list(range(200))
        assert [m.value for m in messages] == [b"value-%d" % i for i in range(200)]
        assert broker.stop(signal.SIGINT) == 0
    finally:
        broker.kill()


def test_sigkill_during_production_loses_no_acknowledged_record(tmp_path):
    broker = BrokerProcess(tmp_path / "data", "--flush-on-ack", "true").start()
    acknowledged: dict[int, bytes] = {}
    lock = threading.Lock()
    enough = threading.Event()
    try:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all", retries=0,
                                 enable_idempotence=False, linger_ms=1, max_block_ms=5000,
                                 request_timeout_ms=5000, reconnect_backoff_max_ms=100)

        def on_ack(value):
            def record(metadata):
                with lock:
                    acknowledged[metadata.offset] = value
                    if len(acknowledged) >= 300:
                        enough.set()
            return record

        # Keep producing until the broker is killed under the producer.
        i = 0
        while not enough.is_set() and i < 100_000:
            value = b"record-%d" % i
            producer.send(TOPIC, value=value).add_callback(on_ack(value))
            i += 1
            if i % 50 == 0:
                producer.flush(10)
        for _ in range(100):
            value = b"in-flight-%d" % i
            producer.send(TOPIC, value=value).add_callback(on_ack(value))
            i += 1
        broker.process.send_signal(signal.SIGKILL)
        broker.process.wait()
        producer.close(timeout=10)
        with lock:
            acked = dict(acknowledged)
        assert len(acked) >= 300

        broker.start()
        messages = read_all(broker.bootstrap, max(acked) + 1)
        offsets = [m.offset for m in messages]
        assert offsets == sorted(set(offsets)), "offsets repeat or go backwards"
        assert offsets[: max(acked) + 1] == list(range(max(acked) + 1))
        stored = {m.offset: m.value for m in messages}
        for offset, value in acked.items():
            assert stored[offset] == value
    finally:
        broker.kill()


def test_sigterm_right_after_the_ready_line_stops_cleanly(tmp_path):
    # The ready line is the signal that the broker can be stopped: its signal handling is in place
    # by then, so SIGTERM at once is a clean stop (exit 0), not death by the signal (-15).
    for attempt in range(5):
        broker = BrokerProcess(tmp_path / f"data-{attempt}").start()
        try:
            assert broker.stop() == 0, broker.log_text()
        finally:
            broker.kill()
        assert "stopped" in broker.log_text()
