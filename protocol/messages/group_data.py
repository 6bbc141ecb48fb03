"""Records the group coordinator keeps or reads rather than sends: Kafka's "data" messages.

- The committed-offset records of ``__consumer_offsets``: a key is an int16 version (0 and 1
  are offset commits, 2 is group metadata) and an OffsetCommitKey of that version; a value is an
  int16 version and an OffsetCommitValue of that version (3 is the one this broker writes, as
  Kafka 3.x does; 4 is flexible). Kafka's group-coordinator module declares these.
- ConsumerProtocolSubscription: what a member of a "consumer" group sends as its protocol
  metadata (the topics it subscribes to first). Newer versions only append fields, so Kafka reads
  every version as version 0 and ignores the rest.
"""

from ..schema import data, field

OFFSET_COMMIT_KEY = data(
    "OffsetCommitKey", "0-1", "none",
    field("group", "string", "0-1"),
    field("topic", "string", "0-1"),
    field("partition", "int32", "0-1"),
)


OFFSET_COMMIT_VALUE = data(
    "OffsetCommitValue", "0-4", "4+",
    field("offset", "int64", "0+"),
    field("leader_epoch", "int32", "3+", default=-1),
    field("metadata", "string", "0+"),
    field("commit_timestamp", "int64", "0+"),
    field("expire_timestamp", "int64", "1", default=-1),
)


CONSUMER_PROTOCOL_SUBSCRIPTION = data(
    "ConsumerProtocolSubscription", "0-3", "none",
    field("topics", "[]string", "0+"),
    field("user_data", "bytes", "0+", nullable="0+", default=None),
    field("owned_partitions", "[]TopicPartition", "1+", fields=(
        field("topic", "string", "1+"),
        field("partitions", "[]int32", "1+"),
    )),
    field("generation_id", "int32", "2+", default=-1),
    field("rack_id", "string", "3+", nullable="3+", default=None),
)


MESSAGES = (OFFSET_COMMIT_KEY, OFFSET_COMMIT_VALUE, CONSUMER_PROTOCOL_SUBSCRIPTION)
