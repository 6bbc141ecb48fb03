"""Kafka 3.9's topic configs beyond the log's own, through confluent-kafka's AdminClient (librdkafka)
against the real broker process: created with a topic, described back as Kafka prints them,
altered, kept across a restart, and refused with Kafka's messages."""

from __future__ import annotations

from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

from interop.admin_clients import confluent_admin, confluent_topic_configs, kafka_error, kafka_error_message
from interop.clients import TIMEOUT_SECONDS

# (value given, value as Kafka prints it)
CREATED_WITH = {
    "delete.retention.ms": ("3600000", "3600000"),
    "min.compaction.lag.ms": ("1000", "1000"),
    "max.compaction.lag.ms": ("86400000", "86400000"),
    "min.cleanable.dirty.ratio": ("0.25", "0.25"),
    "segment.index.bytes": ("65536", "65536"),
    "index.interval.bytes": ("1024", "1024"),
    "unclean.leader.election.enable": ("TRUE", "true"),
    "message.format.version": ("2.8", "2.8"),
    "message.downconversion.enable": ("false", "false"),
    "leader.replication.throttled.replicas": ("0:1 , 1:1", "0:1,1:1"),
    "preallocate": ("true", "true"),
    "local.retention.ms": ("-1", "-1"),
    "remote.log.copy.disable": ("true", "true"),
}
TOPIC = "DYNAMIC_TOPIC_CONFIG"


def test_configs_created_altered_and_kept_across_a_restart(broker):
    admin = confluent_admin(broker)
    topic = NewTopic("ck-table", 1, 1, config={name: given for name, (given, _) in CREATED_WITH.items()})
    admin.create_topics([topic], request_timeout=TIMEOUT_SECONDS)["ck-table"].result(TIMEOUT_SECONDS)
    expected = {name: (printed, TOPIC) for name, (_, printed) in CREATED_WITH.items()}
    configs = confluent_topic_configs(admin, "ck-table")
    assert {name: configs[name] for name in CREATED_WITH} == expected
    assert configs["remote.storage.enable"] == ("false", "DEFAULT_CONFIG")
    assert configs["follower.replication.throttled.replicas"] == ("", "DEFAULT_CONFIG")

    changes = ConfigResource(ResourceType.TOPIC, "ck-table", incremental_configs=[
        ConfigEntry("min.cleanable.dirty.ratio", "1", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("leader.replication.throttled.replicas", "2:1", incremental_operation=AlterConfigOpType.APPEND),
        ConfigEntry("preallocate", None, incremental_operation=AlterConfigOpType.DELETE)])
    (future,) = admin.incremental_alter_configs([changes], request_timeout=TIMEOUT_SECONDS).values()
    assert future.result(TIMEOUT_SECONDS) is None
    del expected["preallocate"]
    expected.update({"min.cleanable.dirty.ratio": ("1.0", TOPIC),
                     "leader.replication.throttled.replicas": ("0:1,1:1,2:1", TOPIC)})

    broker.stop()
    broker.start()
    configs = confluent_topic_configs(confluent_admin(broker), "ck-table")
    assert {name: configs[name] for name in expected} == expected
    assert configs["preallocate"] == ("false", "DEFAULT_CONFIG")


def test_values_kafka_refuses_get_its_messages(broker):
    admin = confluent_admin(broker)
    refused = {
        "ck-ratio": ({"min.cleanable.dirty.ratio": "1.5"},
                     "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"),
        "ck-version": ({"message.format.version": "9.9"},
                       "Invalid value 9.9 for configuration message.format.version: Version 9.9 is not a valid version"),
        "ck-remote": ({"remote.storage.enable": "true"}, "Tiered Storage functionality is disabled in the broker. "
                                                          "Topic cannot be configured with remote log storage."),
    }
    futures = admin.create_topics([NewTopic(name, 1, 1, config=configs) for name, (configs, _) in refused.items()],
                                  request_timeout=TIMEOUT_SECONDS)
    assert {name: (kafka_error(f), kafka_error_message(f)) for name, f in futures.items()} == {
        name: ("INVALID_CONFIG", message) for name, (_, message) in refused.items()}
