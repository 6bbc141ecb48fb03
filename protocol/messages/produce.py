"""Writing: produce requests and the producer id allocation idempotent producers start with."""

from ..schema import field, request, response


PRODUCE_REQUEST = request(
    0, "ProduceRequest", "0-11", "9+",
    field("transactional_id", "string", "3+", nullable="3+", default=None),
    field("acks", "int16", "0+"),
    field("timeout_ms", "int32", "0+"),
    field("topic_data", "[]TopicProduceData", "0+", fields=(
        field("name", "string", "0+"),
        field("partition_data", "[]PartitionProduceData", "0+", fields=(
            field("index", "int32", "0+"),
            field("records", "records", "0+", nullable="0+"),
        )),
    )),
)


PRODUCE_RESPONSE = response(
    0, "ProduceResponse", "0-11", "9+",
    field("responses", "[]TopicProduceResponse", "0+", fields=(
        field("name", "string", "0+"),
        field("partition_responses", "[]PartitionProduceResponse", "0+", fields=(
            field("index", "int32", "0+"),
            field("error_code", "int16", "0+"),
            field("base_offset", "int64", "0+"),
            field("log_append_time_ms", "int64", "2+", default=-1),
            field("log_start_offset", "int64", "5+", default=-1),
            field("record_errors", "[]BatchIndexAndErrorMessage", "8+", fields=(
                field("batch_index", "int32", "8+"),
                field("batch_index_error_message", "string", "8+", nullable="8+", default=None),
            )),
            field("error_message", "string", "8+", nullable="8+", default=None),
            field("current_leader", "LeaderIdAndEpoch", "10+", tag=0, tagged="10+", fields=(
                field("leader_id", "int32", "10+", default=-1),
                field("leader_epoch", "int32", "10+", default=-1),
            )),
        )),
    )),
    field("throttle_time_ms", "int32", "1+", default=0),
    field("node_endpoints", "[]NodeEndpoint", "10+", tag=0, tagged="10+", fields=(
        field("node_id", "int32", "10+"),
        field("host", "string", "10+"),
        field("port", "int32", "10+"),
        field("rack", "string", "10+", nullable="10+", default=None),
    )),
)


INIT_PRODUCER_ID_REQUEST = request(
    22, "InitProducerIdRequest", "0-5", "2+",
    field("transactional_id", "string", "0+", nullable="0+"),
    field("transaction_timeout_ms", "int32", "0+"),
    field("producer_id", "int64", "3+", default=-1),
    field("producer_epoch", "int16", "3+", default=-1),
)


INIT_PRODUCER_ID_RESPONSE = response(
    22, "InitProducerIdResponse", "0-5", "2+",
    field("throttle_time_ms", "int32", "0+"),
    field("error_code", "int16", "0+"),
    field("producer_id", "int64", "0+", default=-1),
    field("producer_epoch", "int16", "0+"),
)


MESSAGES = (
    PRODUCE_REQUEST,
    PRODUCE_RESPONSE,
    INIT_PRODUCER_ID_REQUEST,
    INIT_PRODUCER_ID_RESPONSE,
)
