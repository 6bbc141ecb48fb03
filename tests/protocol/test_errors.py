"""Kafka's error code table: codes, names and retriable flags as Kafka defines them."""

import inspect

import kafka.errors
import pytest

from protocol.errors import CorruptRecordError, ErrorCode, ProtocolError

# kafka-python still uses names Kafka has since changed.
KAFKA_PYTHON_OLD_NAMES = {
    "UNKNOWN": "UNKNOWN_SERVER_ERROR",
    "NO_ERROR": "NONE",
    "NOT_LEADER_FOR_PARTITION": "NOT_LEADER_OR_FOLLOWER",
    "MESSAGE_SIZE_TOO_LARGE": "MESSAGE_TOO_LARGE",
    "INVALID_TOPIC": "INVALID_TOPIC_EXCEPTION",
    "INVALID_REPLICATION_ASSIGNMENT": "INVALID_REPLICA_ASSIGNMENT",
}
# Java's CorruptRecordException is a RetriableException; kafka-python does not retry it.
KAFKA_PYTHON_RETRIABLE_DIFFERS = {ErrorCode.CORRUPT_MESSAGE}


def kafka_python_errors():
    classes = {
        cls
        for cls in vars(kafka.errors).values()
        if inspect.isclass(cls)
        and issubclass(cls, kafka.errors.BrokerResponseError)
        and cls.errno is not None
    }
    return sorted(classes, key=lambda cls: (cls.errno, cls.__name__))


def test_codes_run_without_gaps_from_unknown_server_error_to_133():
    assert [int(code) for code in ErrorCode] == list(range(-1, 134))
    assert len(ErrorCode.__members__) == len(ErrorCode), "two names share a code"


@pytest.mark.parametrize(
    ("code", "value", "retriable"),
    [
        (ErrorCode.UNKNOWN_SERVER_ERROR, -1, False),
        (ErrorCode.NONE, 0, False),
        (ErrorCode.OFFSET_OUT_OF_RANGE, 1, False),
        (ErrorCode.CORRUPT_MESSAGE, 2, True),
        (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, 3, True),
        (ErrorCode.NOT_LEADER_OR_FOLLOWER, 6, True),
        (ErrorCode.MESSAGE_TOO_LARGE, 10, False),
        (ErrorCode.NOT_COORDINATOR, 16, True),
        (ErrorCode.INVALID_TOPIC_EXCEPTION, 17, False),
        (ErrorCode.REBALANCE_IN_PROGRESS, 27, False),
        (ErrorCode.UNSUPPORTED_VERSION, 35, False),
        (ErrorCode.NOT_CONTROLLER, 41, True),
        (ErrorCode.CONCURRENT_TRANSACTIONS, 51, True),
        (ErrorCode.UNKNOWN_PRODUCER_ID, 59, False),
        (ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, 76, False),
        (ErrorCode.PRODUCER_FENCED, 90, False),
        (ErrorCode.UNKNOWN_TOPIC_ID, 100, True),
        (ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR, 106, True),
        (ErrorCode.TRANSACTION_ABORTABLE, 120, False),
        (ErrorCode.INVALID_SHARE_SESSION_EPOCH, 123, True),
        (ErrorCode.REBOOTSTRAP_REQUIRED, 129, False),
        (ErrorCode.SHARE_SESSION_LIMIT_REACHED, 133, True),
    ],
)
def test_selected_codes_match_kafka(code, value, retriable):
    assert code == value
    assert ErrorCode(value) is code
    assert code.retriable is retriable


@pytest.mark.parametrize("cls", kafka_python_errors(), ids=lambda cls: cls.__name__)
def test_agrees_with_kafka_python(cls):
    code = ErrorCode(cls.errno)
    assert code.name == KAFKA_PYTHON_OLD_NAMES.get(cls.message, cls.message)
    if code not in KAFKA_PYTHON_RETRIABLE_DIFFERS:
        assert code.retriable is cls.retriable


def test_kafka_python_knows_most_of_the_table():
    assert len({cls.errno for cls in kafka_python_errors()}) >= 120


def test_corrupt_record_error_is_a_protocol_error_answered_with_corrupt_message():
    assert issubclass(CorruptRecordError, ProtocolError)
    assert CorruptRecordError.error_code is ErrorCode.CORRUPT_MESSAGE
