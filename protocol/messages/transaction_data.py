"""Records the transaction coordinator keeps rather than sends: Kafka's "data" messages of its
transaction state log (``__transaction_state``), as Kafka's transaction-coordinator module
declares them.

- A key is an int16 version (0) and a TransactionLogKey: the transactional id.
- A value is an int16 version and a TransactionLogValue of that version: the transactional id's
  producer id and epoch, timeout, state (``transaction_status``: the id of Kafka's
  TransactionState), partitions (null in state Empty) and times. Version 0 is what Kafka writes
  until transaction.version 1 is enabled; version 1 is flexible and adds the KIP-890 fields as
  tagged fields. A null value (tombstone) removes the transactional id.
"""

from ..schema import data, field

TRANSACTION_LOG_KEY = data(
    "TransactionLogKey", "0", "none",
    field("transactional_id", "string", "0"),
)


TRANSACTION_LOG_VALUE = data(
    "TransactionLogValue", "0-1", "1+",
    field("producer_id", "int64", "0+"),
    field("previous_producer_id", "int64", "1+", tag=0, tagged="1+", default=-1),
    field("next_producer_id", "int64", "1+", tag=1, tagged="1+", default=-1),
    field("producer_epoch", "int16", "0+"),
    field("transaction_timeout_ms", "int32", "0+"),
    field("transaction_status", "int8", "0+"),
    field("transaction_partitions", "[]PartitionsSchema", "0+", nullable="0+", fields=(
        field("topic", "string", "0+"),
        field("partition_ids", "[]int32", "0+"),
    )),
    field("transaction_last_update_timestamp_ms", "int64", "0+"),
    field("transaction_start_timestamp_ms", "int64", "0+"),
    field("client_transaction_version", "int16", "1+", tag=2, tagged="1+", default=0),
)


MESSAGES = (TRANSACTION_LOG_KEY, TRANSACTION_LOG_VALUE)
