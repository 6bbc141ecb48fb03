"""Dynamic broker configs on their own: Kafka's checks of a broker level's new configs, its
incremental operations, and the file they are kept in."""

from __future__ import annotations

import stat
from types import SimpleNamespace

import pytest
import trio

from broker.dynamic_config import FILE_NAME, DynamicBrokerConfigs, incremental, validate
from broker.metadata import MetadataError
from broker.topic_config import AlterOp, ConfigSource
from protocol.errors import ApiError, ErrorCode


def refusal(configs: dict[str, str], per_broker: bool = True) -> tuple[int, str] | None:
    try:
        validate(configs, per_broker)
    except ApiError as exc:
        return exc.code, exc.message
    return None


def test_kafkas_checks_in_kafkas_order_and_words():
    assert refusal({"log.retention.ms": "1", "sasl.kerberos.min.time.before.relogin": "58000",
                    "listener.name.internal.ssl.keystore.location": "/k", "custom.thing": "x"}) is None
    assert refusal({"broker.id": "2", "num.partitions": "3", "log.retention.ms": "x"}) == (
        ErrorCode.INVALID_REQUEST, "Cannot update these configs dynamically: Set(broker.id, num.partitions)")
    assert refusal({"ssl.keystore.location": "/k"}) == (
        ErrorCode.INVALID_REQUEST, "These security configs can be dynamically updated only per-listener using the "
                                   "listener prefix: Set(ssl.keystore.location)")
    assert refusal({"log.retention.ms": "soon"}) == (
        ErrorCode.INVALID_REQUEST, "Invalid value soon for configuration log.retention.ms: Not a number of type LONG")
    assert refusal({"log.segment.bytes": "13"}) == (
        ErrorCode.INVALID_REQUEST, "Invalid value 13 for configuration log.segment.bytes: Value must be at least 14")
    assert refusal({"sasl.login.refresh.buffer.seconds": "40000"}) == (
        ErrorCode.INVALID_REQUEST,
        "Invalid value 40000 for configuration sasl.login.refresh.buffer.seconds: Not a number of type SHORT")
    # Listener and security settings are per broker; a listener's connection limits may be cluster-wide.
    assert refusal({"sasl.enabled.mechanisms": "PLAIN", "listener.name.a.ssl.keystore.location": "/k",
                    "listener.name.a.max.connections": "5", "log.retention.ms": "1"}, per_broker=False) == (
        ErrorCode.INVALID_REQUEST, "Cannot update these configs at default cluster level, broker id must be "
                                   "specified: Set(listener.name.a.ssl.keystore.location, sasl.enabled.mechanisms)")


def change(name: str, op: AlterOp, value: str | None = None):
    return SimpleNamespace(name=name, config_operation=op, value=value)


def test_incremental_operations_on_a_level():
    current = {"log.retention.ms": "5", "metric.reporters": "a,b"}
    assert incremental(current, [change("log.retention.ms", AlterOp.DELETE), change("num.io.threads", AlterOp.SET, "4"),
                                 change("metric.reporters", AlterOp.APPEND, "b,c"),
                                 change("log.cleanup.policy", AlterOp.APPEND, "compact")]) == {
        "num.io.threads": "4", "metric.reporters": "a,b,c", "log.cleanup.policy": "delete,compact"}
    assert incremental(current, [change("metric.reporters", AlterOp.SUBTRACT, "a")]) == {
        "log.retention.ms": "5", "metric.reporters": "b"}
    assert current == {"log.retention.ms": "5", "metric.reporters": "a,b"}
    with pytest.raises(ApiError) as refused:
        incremental(current, [change("log.retention.ms", AlterOp.APPEND, "1")])
    assert (refused.value.code, refused.value.message) == (
        ErrorCode.INVALID_CONFIG, "Config value append is not allowed for config key: log.retention.ms")


async def test_levels_are_kept_and_topic_defaults_take_this_brokers_over_the_clusters(tmp_path):
    dynamic = DynamicBrokerConfigs(tmp_path)
    dynamic.load()
    await dynamic.replace(False, {"log.retention.ms": "50", "log.segment.bytes": "2000000", "num.io.threads": "3"})
    await dynamic.replace(True, {"log.retention.ms": "40", "log.segment.bytes": "not a number"})
    reopened = DynamicBrokerConfigs(tmp_path)
    reopened.load()
    assert (reopened.per_broker, reopened.cluster_default) == (dynamic.per_broker, dynamic.cluster_default)
    # Password configs are kept as given: the file is the broker user's alone.
    assert stat.S_IMODE((tmp_path / FILE_NAME).stat().st_mode) == 0o600
    defaults = reopened.topic_defaults()
    assert (defaults["retention.ms"].value, defaults["retention.ms"].source) == (40, ConfigSource.DYNAMIC_BROKER_CONFIG)
    # A value that does not parse (kept by another version) is left out rather than stop the broker.
    assert set(defaults) == {"retention.ms"}


def test_a_damaged_file_stops_the_start(tmp_path):
    (tmp_path / FILE_NAME).write_text('{"broker": {"log.retention.ms": 5}}')
    with pytest.raises(MetadataError, match="unreadable dynamic broker configs"):
        DynamicBrokerConfigs(tmp_path).load()


async def test_changes_at_once_each_build_on_the_one_before(tmp_path):
    dynamic = DynamicBrokerConfigs(tmp_path)
    async with trio.open_nursery() as nursery:
        for number in range(3):
            nursery.start_soon(dynamic.change, False, lambda current, n=number: {**current, f"custom.{n}": "x"})
    reopened = DynamicBrokerConfigs(tmp_path)
    reopened.load()
    assert reopened.cluster_default == dynamic.cluster_default == {"custom.0": "x", "custom.1": "x", "custom.2": "x"}


async def test_a_refused_change_leaves_the_level_as_it_was(tmp_path):
    dynamic = DynamicBrokerConfigs(tmp_path)
    await dynamic.change(True, lambda current: {"log.retention.ms": "5"})
    with pytest.raises(ApiError):
        await dynamic.change(True, lambda current: {**current, "broker.id": "2"})
    await dynamic.change(True, lambda current: {"log.retention.ms": "7"}, validate_only=True)
    assert dynamic.per_broker == {"log.retention.ms": "5"}
