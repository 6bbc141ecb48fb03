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
    """A broker served in this test's trio run, on a free port, stopped after the test."""
    broker = Broker(broker_config)
    await nursery.start(broker.serve)
    yield broker
    broker.stop()


@pytest.fixture
async def client(broker):
    client = await WireClient.connect(broker.port)
    yield client
    await client.aclose()
