"""Kafka 3.9's topic configs as its brokers describe them: the expected values of the tests that
check ComLog's table, over the wire and through the clients' admin APIs."""

# DescribeConfigs' config_type values.
BOOLEAN, STRING, INT, LONG, DOUBLE, LIST = 1, 2, 3, 5, 6, 7

# Kafka 3.9's topic configs (LogConfig), each with its type, its default as Kafka prints it and the
# broker config that supplies the default (ServerTopicConfigSynonyms), None where there is none.
KAFKA_3_9 = {
    "cleanup.policy": (LIST, "delete", "log.cleanup.policy"),
    "compression.gzip.level": (INT, "-1", "compression.gzip.level"),
    "compression.lz4.level": (INT, "9", "compression.lz4.level"),
    "compression.type": (STRING, "producer", "compression.type"),
    "compression.zstd.level": (INT, "3", "compression.zstd.level"),
    "delete.retention.ms": (LONG, "86400000", "log.cleaner.delete.retention.ms"),
    "file.delete.delay.ms": (LONG, "60000", "log.segment.delete.delay.ms"),
    "flush.messages": (LONG, "9223372036854775807", "log.flush.interval.messages"),
    "flush.ms": (LONG, "9223372036854775807", "log.flush.interval.ms"),
    "follower.replication.throttled.replicas": (LIST, "", None),
    "index.interval.bytes": (INT, "4096", "log.index.interval.bytes"),
    "leader.replication.throttled.replicas": (LIST, "", None),
    "local.retention.bytes": (LONG, "-2", "log.local.retention.bytes"),
    "local.retention.ms": (LONG, "-2", "log.local.retention.ms"),
    "max.compaction.lag.ms": (LONG, "9223372036854775807", "log.cleaner.max.compaction.lag.ms"),
    "max.message.bytes": (INT, "1048588", "message.max.bytes"),
    "message.downconversion.enable": (BOOLEAN, "true", "log.message.downconversion.enable"),
    "message.format.version": (STRING, "3.0-IV1", "log.message.format.version"),
    "message.timestamp.after.max.ms": (LONG, "9223372036854775807", "log.message.timestamp.after.max.ms"),
    "message.timestamp.before.max.ms": (LONG, "9223372036854775807", "log.message.timestamp.before.max.ms"),
    "message.timestamp.difference.max.ms": (LONG, "9223372036854775807", "log.message.timestamp.difference.max.ms"),
    "message.timestamp.type": (STRING, "CreateTime", "log.message.timestamp.type"),
    "min.cleanable.dirty.ratio": (DOUBLE, "0.5", "log.cleaner.min.cleanable.ratio"),
    "min.compaction.lag.ms": (LONG, "0", "log.cleaner.min.compaction.lag.ms"),
    "min.insync.replicas": (INT, "1", "min.insync.replicas"),
    "preallocate": (BOOLEAN, "false", "log.preallocate"),
    "remote.log.copy.disable": (BOOLEAN, "false", None),
    "remote.log.delete.on.disable": (BOOLEAN, "false", None),
    "remote.storage.enable": (BOOLEAN, "false", None),
    "retention.bytes": (LONG, "-1", "log.retention.bytes"),
    "retention.ms": (LONG, "604800000", "log.retention.ms"),
    "segment.bytes": (INT, "1073741824", "log.segment.bytes"),
    "segment.index.bytes": (INT, "10485760", "log.index.size.max.bytes"),
    "segment.jitter.ms": (LONG, "0", "log.roll.jitter.ms"),
    "segment.ms": (LONG, "604800000", "log.roll.ms"),
    "unclean.leader.election.enable": (BOOLEAN, "false", "unclean.leader.election.enable"),
}
