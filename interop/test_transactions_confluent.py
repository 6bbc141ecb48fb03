"""Transactions with confluent-kafka (librdkafka) against the real broker process: commit and abort
across partitions of two topics with both isolation levels, offsets sent in transactions, fencing
by a newer producer, and a dead producer's transaction aborted by its timeout (interop/txn_clients.py)."""

from interop import txn_clients as scenarios

CLIENT = "confluent-kafka"


def test_commit_and_abort(shared_broker):
    scenarios.commit_and_abort(shared_broker, CLIENT)


def test_offsets_sent_in_transactions(shared_broker):
    scenarios.offsets_in_transactions(shared_broker, CLIENT)


def test_newer_producer_fences_the_older(shared_broker):
    # librdkafka turns each fencing code (INVALID_PRODUCER_EPOCH, PRODUCER_FENCED) into its fatal
    # _FENCED error, which flush() raises for the rejected produce.
    scenarios.fencing(shared_broker, CLIENT, fenced_commit={"code": "_FENCED", "fatal": True},
                      late_send={"code": "_FENCED", "fatal": True})


def test_dead_producers_transaction_is_aborted_after_its_timeout(shared_broker):
    scenarios.abandoned_transaction_times_out(shared_broker, CLIENT)
