"""Transactions with KafkaJS (Node.js, interop/js) against the real broker process: commit and
abort across partitions of two topics with both isolation levels, offsets sent in transactions,
fencing by a newer producer, and a dead producer's transaction aborted by its timeout
(interop/txn_clients.py). Skipped where node or the kafkajs package is missing, except where
COMLOG_REQUIRE_KAFKAJS=1 (CI), which fails them instead."""

import pytest

from interop import txn_clients as scenarios

CLIENT = "kafkajs"


@pytest.fixture(autouse=True, scope="module")
def kafkajs_installed():
    scenarios.require_kafkajs()


def test_commit_and_abort(shared_broker):
    scenarios.commit_and_abort(shared_broker, CLIENT)


def test_offsets_sent_in_transactions(shared_broker):
    scenarios.offsets_in_transactions(shared_broker, CLIENT)


def test_newer_producer_fences_the_older(shared_broker):
    # KafkaJS speaks the transaction APIs' first versions, which have no PRODUCER_FENCED: Kafka
    # answers those INVALID_PRODUCER_EPOCH.
    scenarios.fencing(shared_broker, CLIENT, fenced_commit={"code": "INVALID_PRODUCER_EPOCH"},
                      late_send={"code": "INVALID_PRODUCER_EPOCH"})


def test_dead_producers_transaction_is_aborted_after_its_timeout(shared_broker):
    scenarios.abandoned_transaction_times_out(shared_broker, CLIENT)
