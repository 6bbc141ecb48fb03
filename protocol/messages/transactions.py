"""Transactions: a transactional producer's calls to its transaction coordinator, and the
administration of transactions and of the producers writing to each partition."""

from ..schema import field, request, response

# Kafka's common structs, each used in two places of its message (v0-3 and the batched v4+ form).
_ADD_PARTITIONS_TO_TXN_TOPIC = (
    field("name", "string", "0+"),
    field("partitions", "[]int32", "0+"),
)

_ADD_PARTITIONS_TO_TXN_TOPIC_RESULT = (
    field("name", "string", "0+"),
    field("results_by_partition", "[]AddPartitionsToTxnPartitionResult", "0+", fields=(
        field("partition_index", "int32", "0+"),
        field("partition_error_code", "int16", "0+"),
    )),
)


ADD_PARTITIONS_TO_TXN_REQUEST = request(
    24, "AddPartitionsToTxnRequest", "0-5", "3+",
    field("transactions", "[]AddPartitionsToTxnTransaction", "4+", fields=(
        field("transactional_id", "string", "4+"),
        field("producer_id", "int64", "4+"),
        field("producer_epoch", "int16", "4+"),
        field("verify_only", "bool", "4+", default=False),
        field("topics", "[]AddPartitionsToTxnTopic", "4+", fields=_ADD_PARTITIONS_TO_TXN_TOPIC),
    )),
    field("v3_and_below_transactional_id", "string", "0-3"),
    field("v3_and_below_producer_id", "int64", "0-3"),
    field("v3_and_below_producer_epoch", "int16", "0-3"),
    field("v3_and_below_topics", "[]AddPartitionsToTxnTopic", "0-3", fields=_ADD_PARTITIONS_TO_TXN_TOPIC),
)


ADD_PARTITIONS_TO_TXN_RESPONSE = response(
    24, "AddPartitionsToTxnResponse", "0-5", "3+",
    field("throttle_time_ms", "int32", "0+"),
    field("error_code", "int16", "4+"),
    field("results_by_transaction", "[]AddPartitionsToTxnResult", "4+", fields=(
        field("transactional_id", "string", "4+"),
        field("topic_results", "[]AddPartitionsToTxnTopicResult", "4+", fields=_ADD_PARTITIONS_TO_TXN_TOPIC_RESULT),
    )),
    field("results_by_topic_v3_and_below", "[]AddPartitionsToTxnTopicResult", "0-3",
          fields=_ADD_PARTITIONS_TO_TXN_TOPIC_RESULT),
)


ADD_OFFSETS_TO_TXN_REQUEST = request(
    25, "AddOffsetsToTxnRequest", "0-4", "3+",
    field("transactional_id", "string", "0+"),
    field("producer_id", "int64", "0+"),
    field("producer_epoch", "int16", "0+"),
    field("group_id", "string", "0+"),
)


ADD_OFFSETS_TO_TXN_RESPONSE = response(
    25, "AddOffsetsToTxnResponse", "0-4", "3+",
    field("throttle_time_ms", "int32", "0+"),
    field("error_code", "int16", "0+"),
)


END_TXN_REQUEST = request(
    26, "EndTxnRequest", "0-5", "3+",
    field("transactional_id", "string", "0+"),
    field("producer_id", "int64", "0+"),
    field("producer_epoch", "int16", "0+"),
    field("committed", "bool", "0+"),
)


END_TXN_RESPONSE = response(
    26, "EndTxnResponse", "0-5", "3+",
    field("throttle_time_ms", "int32", "0+"),
    field("error_code", "int16", "0+"),
    field("producer_id", "int64", "5+", default=-1),
    field("producer_epoch", "int16", "5+", default=-1),
)


TXN_OFFSET_COMMIT_REQUEST = request(
    28, "TxnOffsetCommitRequest", "0-4", "3+",
    field("transactional_id", "string", "0+"),
    field("group_id", "string", "0+"),
    field("producer_id", "int64", "0+"),
    field("producer_epoch", "int16", "0+"),
    field("generation_id", "int32", "3+", default=-1),
    field("member_id", "string", "3+", default=""),
    field("group_instance_id", "string", "3+", nullable="3+", default=None),
    field("topics", "[]TxnOffsetCommitRequestTopic", "0+", fields=(
        field("name", "string", "0+"),
        field("partitions", "[]TxnOffsetCommitRequestPartition", "0+", fields=(
            field("partition_index", "int32", "0+"),
            field("committed_offset", "int64", "0+"),
            field("committed_leader_epoch", "int32", "2+", default=-1),
            field("committed_metadata", "string", "0+", nullable="0+"),
        )),
    )),
)


TXN_OFFSET_COMMIT_RESPONSE = response(
    28, "TxnOffsetCommitResponse", "0-4", "3+",
    field("throttle_time_ms", "int32", "0+"),
    field("topics", "[]TxnOffsetCommitResponseTopic", "0+", fields=(
        field("name", "string", "0+"),
        field("partitions", "[]TxnOffsetCommitResponsePartition", "0+", fields=(
            field("partition_index", "int32", "0+"),
            field("error_code", "int16", "0+"),
        )),
    )),
)


DESCRIBE_PRODUCERS_REQUEST = request(
    61, "DescribeProducersRequest", "0", "0+",
    field("topics", "[]TopicRequest", "0+", fields=(
        field("name", "string", "0+"),
        field("partition_indexes", "[]int32", "0+"),
    )),
)


DESCRIBE_PRODUCERS_RESPONSE = response(
    61, "DescribeProducersResponse", "0", "0+",
    field("throttle_time_ms", "int32", "0+"),
    field("topics", "[]TopicResponse", "0+", fields=(
        field("name", "string", "0+"),
        field("partitions", "[]PartitionResponse", "0+", fields=(
            field("partition_index", "int32", "0+"),
            field("error_code", "int16", "0+"),
            field("error_message", "string", "0+", nullable="0+", default=None),
            field("active_producers", "[]ProducerState", "0+", fields=(
                field("producer_id", "int64", "0+"),
                field("producer_epoch", "int32", "0+"),
                field("last_sequence", "int32", "0+", default=-1),
                field("last_timestamp", "int64", "0+", default=-1),
                field("coordinator_epoch", "int32", "0+"),
                field("current_txn_start_offset", "int64", "0+", default=-1),
            )),
        )),
    )),
)


DESCRIBE_TRANSACTIONS_REQUEST = request(
    65, "DescribeTransactionsRequest", "0", "0+",
    field("transactional_ids", "[]string", "0+"),
)


DESCRIBE_TRANSACTIONS_RESPONSE = response(
    65, "DescribeTransactionsResponse", "0", "0+",
    field("throttle_time_ms", "int32", "0+"),
    field("transaction_states", "[]TransactionState", "0+", fields=(
        field("error_code", "int16", "0+"),
        field("transactional_id", "string", "0+"),
        field("transaction_state", "string", "0+"),
        field("transaction_timeout_ms", "int32", "0+"),
        field("transaction_start_time_ms", "int64", "0+"),
        field("producer_id", "int64", "0+"),
        field("producer_epoch", "int16", "0+"),
        field("topics", "[]TopicData", "0+", fields=(
            field("topic", "string", "0+"),
            field("partitions", "[]int32", "0+"),
        )),
    )),
)


LIST_TRANSACTIONS_REQUEST = request(
    66, "ListTransactionsRequest", "0-1", "0+",
    field("state_filters", "[]string", "0+"),
    field("producer_id_filters", "[]int64", "0+"),
    field("duration_filter", "int64", "1+", default=-1),
)


LIST_TRANSACTIONS_RESPONSE = response(
    66, "ListTransactionsResponse", "0-1", "0+",
    field("throttle_time_ms", "int32", "0+"),
    field("error_code", "int16", "0+"),
    field("unknown_state_filters", "[]string", "0+"),
    field("transaction_states", "[]TransactionState", "0+", fields=(
        field("transactional_id", "string", "0+"),
        field("producer_id", "int64", "0+"),
        field("transaction_state", "string", "0+"),
    )),
)


MESSAGES = (
    ADD_PARTITIONS_TO_TXN_REQUEST,
    ADD_PARTITIONS_TO_TXN_RESPONSE,
    ADD_OFFSETS_TO_TXN_REQUEST,
    ADD_OFFSETS_TO_TXN_RESPONSE,
    END_TXN_REQUEST,
    END_TXN_RESPONSE,
    TXN_OFFSET_COMMIT_REQUEST,
    TXN_OFFSET_COMMIT_RESPONSE,
    DESCRIBE_PRODUCERS_REQUEST,
    DESCRIBE_PRODUCERS_RESPONSE,
    DESCRIBE_TRANSACTIONS_REQUEST,
    DESCRIBE_TRANSACTIONS_RESPONSE,
    LIST_TRANSACTIONS_REQUEST,
    LIST_TRANSACTIONS_RESPONSE,
)
