from pathlib import Path

import pytest

from broker.config import BrokerConfig, build_parser, parse_config
from broker.topic_config import TOPIC_CONFIGS, TopicConfig


def test_defaults_match_kafkas():
    config = parse_config([], environ={})
    assert config == BrokerConfig()
    assert (config.host, config.port) == ("127.0.0.1", 9092)
    assert config.max_request_bytes == 100 * 1024 * 1024
    assert config.max_message_bytes == 1048588
    assert (config.segment_bytes, config.retention_ms) == (1 << 30, 7 * 24 * 60 * 60 * 1000)


def test_topic_config_flags_come_from_the_table_and_are_checked_as_the_configs_are():
    for definition in TOPIC_CONFIGS.values():
        if definition.flag:
            assert getattr(BrokerConfig(), definition.attribute) == definition.default
    config = parse_config(["--segment-bytes", "14", "--message-timestamp-type", "LogAppendTime"],
                          environ={"COMLOG_RETENTION_MS": "-1"})
    assert (config.segment_bytes, config.message_timestamp_type, config.retention_ms) == (14, "LogAppendTime", -1)
    assert TopicConfig(config).log_config().segment_bytes == 14


def test_flags_win_over_environment():
    config = parse_config(["--port", "19092"], environ={"COMLOG_PORT": "29092", "COMLOG_TOPIC": "events"})
    assert config.port == 19092
    assert config.topic == "events"


def test_advertised_address_defaults_to_listen_address():
    config = parse_config(["--host", "0.0.0.0", "--advertised-host", "kafka.local"], environ={})
    assert config.advertised_address == ("kafka.local", 9092)


def test_data_dir_is_a_path():
    assert parse_config(["--data-dir", "/tmp/x"], environ={}).data_dir == Path("/tmp/x")


@pytest.mark.parametrize("argv", [
    ["--port", "70000"],
    ["--segment-bytes", "13"],  # Kafka's least segment.bytes is 14
    ["--segment-bytes", "1e6"],
    ["--retention-ms", "-5"],
    ["--message-timestamp-type", "WallClock"],
    ["--log-level", "chatty"],
    ["--flush-on-ack", "maybe"],
    ["--topic", "bad/name"],
])
def test_bad_values_are_refused_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(argv, environ={})
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_bad_environment_value_names_the_variable(capsys):
    with pytest.raises(SystemExit):
        parse_config([], environ={"COMLOG_PORT": "ninety"})
    assert "COMLOG_PORT" in capsys.readouterr().err


def test_help_documents_every_flag_and_its_environment_twin():
    text = build_parser().format_help()
    for field in BrokerConfig.__dataclass_fields__:
        flag = "--" + field.replace("_", "-")
        assert flag in text
        assert "COMLOG_" + field.upper() in text


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_listening_on_every_address_needs_an_advertised_host(host, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_config(["--host", host], environ={})
    assert exit_info.value.code == 2
    assert f"nonroutable meta-address {host}" in capsys.readouterr().err
    assert parse_config(["--host", host, "--advertised-host", "kafka.local"], environ={}).host == host


def test_the_advertised_host_cannot_be_the_meta_address(capsys):
    with pytest.raises(SystemExit):
        parse_config(["--advertised-host", "0.0.0.0"], environ={})
    assert "nonroutable meta-address 0.0.0.0" in capsys.readouterr().err
