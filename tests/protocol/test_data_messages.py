"""Round trips of the records the coordinators keep (Kafka's "data" messages) in every version,
and the transaction state log's layout byte for byte, as Kafka's generated code writes it."""

from __future__ import annotations

import struct

import pytest

from message_samples import expected, sample, version_id
from protocol.messages import group_data, transaction_data
from protocol.messages.transaction_data import TRANSACTION_LOG_KEY, TRANSACTION_LOG_VALUE

DATA_VERSIONS = [(codec, version) for codec in group_data.MESSAGES + transaction_data.MESSAGES
                 for version in range(codec.valid_versions.low, codec.valid_versions.high + 1)]


@pytest.mark.parametrize("case", DATA_VERSIONS, ids=version_id)
@pytest.mark.parametrize("full", [True, False], ids=["full", "sparse"])
def test_round_trip(case, full):
    codec, version = case
    value = sample(codec, version, full)
    encoded = codec.encode(version, value)
    assert codec.decode(version, encoded) == expected(codec, version, value)
    assert codec.encode(version, codec.decode(version, encoded)) == encoded


@pytest.mark.parametrize("case", DATA_VERSIONS, ids=version_id)
def test_missing_fields_take_their_defaults(case):
    codec, version = case
    assert codec.decode(version, codec.encode(version, {})) == expected(codec, version, {})


def test_transaction_log_key_is_the_transactional_id():
    assert TRANSACTION_LOG_KEY.encode(0, TRANSACTION_LOG_KEY(transactional_id="txn-1")) == b"\x00\x05txn-1"


ONGOING = TRANSACTION_LOG_VALUE(
    producer_id=4000, producer_epoch=3, transaction_timeout_ms=60_000, transaction_status=1,
    transaction_partitions=[TRANSACTION_LOG_VALUE.PartitionsSchema(topic="t", partition_ids=[0, 2])],
    transaction_last_update_timestamp_ms=1_700_000_000_500, transaction_start_timestamp_ms=1_700_000_000_000)


def test_transaction_log_value_version_0_layout():
    assert TRANSACTION_LOG_VALUE.encode(0, ONGOING) == (
        struct.pack(">qhib", 4000, 3, 60_000, 1)
        + struct.pack(">ih", 1, 1) + b"t" + struct.pack(">iii", 2, 0, 2)
        + struct.pack(">qq", 1_700_000_000_500, 1_700_000_000_000))
    # State Empty has no partitions: null, not an empty array.
    empty = TRANSACTION_LOG_VALUE.encode(0, {**ONGOING, "transaction_status": 0, "transaction_partitions": None})
    assert empty[15:19] == struct.pack(">i", -1)
    assert TRANSACTION_LOG_VALUE.decode(0, empty).transaction_partitions is None


def test_transaction_log_value_version_1_is_flexible_with_the_kip_890_fields_tagged():
    fields = (struct.pack(">qhib", 4000, 3, 60_000, 1)
              + b"\x02" + b"\x02t" + b"\x03" + struct.pack(">ii", 0, 2) + b"\x00"
              + struct.pack(">qq", 1_700_000_000_500, 1_700_000_000_000))
    assert TRANSACTION_LOG_VALUE.encode(1, ONGOING) == fields + b"\x00"
    tagged = {**ONGOING, "previous_producer_id": 3999, "next_producer_id": 4001, "client_transaction_version": 2}
    encoded = TRANSACTION_LOG_VALUE.encode(1, tagged)
    assert encoded == fields + (b"\x03" + b"\x00\x08" + struct.pack(">q", 3999) + b"\x01\x08" + struct.pack(">q", 4001)
                                + b"\x02\x02" + struct.pack(">h", 2))
    decoded = TRANSACTION_LOG_VALUE.decode(1, encoded)
    assert (decoded.previous_producer_id, decoded.next_producer_id, decoded.client_transaction_version) == \
        (3999, 4001, 2)
    absent = TRANSACTION_LOG_VALUE.decode(1, fields + b"\x00")
    assert (absent.previous_producer_id, absent.next_producer_id, absent.client_transaction_version) == (-1, -1, 0)
