import pytest
import trio

from broker.config import BrokerConfig
from broker.server import Broker
from wire_client import WireClient


@pytest.fixture
def broker_config(tmp_path):
    return BrokerConfig(port=0, data_dir=tmp_path / "data")


@pytest.fixture
async def broker(broker_config, nursery):
    """A broker served in this test's trio run, on a free port, stopped and closed after the test
    (a shutdown that leaves data off the disk fails it: ShutdownIncomplete)."""
    async with Broker(broker_config) as broker:
        await nursery.start(broker.serve)
        yield broker


@pytest.fixture
async def client(broker):
    client = await WireClient.connect(broker.port)
    yield client
    await client.aclose()
