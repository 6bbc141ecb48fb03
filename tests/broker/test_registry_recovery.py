"""A broker stopped half-way through creating or deleting a topic: the next start removes the
partition directories no topic counts, and leaves alone what is not a partition of its own."""

import uuid

import trio

from broker.config import BrokerConfig
from broker.metadata import write_topic_id
from broker.server import Broker


async def start_and_stop(config: BrokerConfig) -> Broker:
    async with Broker(config) as broker, trio.open_nursery() as nursery:
        await nursery.start(broker.serve)
        broker.stop()
    return broker


async def test_partitions_no_topic_counts_are_removed_at_start(tmp_path):
    config = BrokerConfig(port=0, data_dir=tmp_path / "data")
    await start_and_stop(config)
    data = config.data_dir
    # A creation that stopped before its metadata file, one that stopped right after mkdir, and a
    # CreatePartitions of the default topic that stopped before its metadata file.
    for name in ("half-made-0", "half-made-1", "comlog-1"):
        (data / name).mkdir()
        write_topic_id(data / name, uuid.uuid4())
    (data / "just-made-0").mkdir()
    # Not ours: a directory named like a partition, holding something else.
    (data / "backup-2024").mkdir()
    (data / "backup-2024" / "notes.txt").write_text("keep me")

    broker = await start_and_stop(config)
    assert sorted(path.name for path in data.iterdir() if path.name.endswith(("-0", "-1"))) == ["comlog-0"]
    assert (data / "backup-2024" / "notes.txt").read_text() == "keep me"
    assert [len(topic.partitions) for topic in broker.registry.topics.values()] == [1]
