"""Transactions: the transaction coordinator and its durable state log (Kafka's __transaction_state)."""

from broker.transactions.coordinator import (
    OFFSETS_PARTITION,
    TransactionCoordinator,
    TransactionMetadata,
    TransactionState,
    by_topic,
    offsets_partition,
)

__all__ = [
    "OFFSETS_PARTITION",
    "TransactionCoordinator",
    "TransactionMetadata",
    "TransactionState",
    "by_topic",
    "offsets_partition",
]
