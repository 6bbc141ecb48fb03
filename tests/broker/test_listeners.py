"""Several listeners: the broker accepts on each, and answers each client with the endpoints of
the listener it connected to (Kafka's advertised.listeners)."""

import trio

from broker.config import BrokerConfig
from broker.listeners import Listener
from broker.server import Broker
from protocol.messages import ApiKey
from wire_client import WireClient


def _listeners():
    return (Listener("INTERNAL", "PLAINTEXT", "127.0.0.1", 0),
            Listener("EXTERNAL", "PLAINTEXT", "127.0.0.1", 0, advertised_host="broker.example", advertised_port=19092))


async def _endpoints(port: int) -> tuple[list, list, tuple]:
    """Metadata's brokers, DescribeCluster's brokers, and FindCoordinator's node, as one client
    of the listener on `port` is told them."""
    client = await WireClient.connect(port)
    try:
        metadata = await client.request(ApiKey.METADATA, 12, {"topics": [], "allow_auto_topic_creation": False})
        cluster = await client.request(ApiKey.DESCRIBE_CLUSTER, 0, {"include_cluster_authorized_operations": False})
        coordinator = await client.request(ApiKey.FIND_COORDINATOR, 2, {"key": "g", "key_type": 0})
    finally:
        await client.aclose()
    return ([(b.host, b.port) for b in metadata.brokers], [(b.host, b.port) for b in cluster.brokers],
            (coordinator.host, coordinator.port))


async def test_each_listener_advertises_its_own_endpoint(tmp_path, nursery):
    async with Broker(BrokerConfig(data_dir=tmp_path, listeners=_listeners())) as broker:
        await nursery.start(broker.serve)
        internal, external = broker.ports["INTERNAL"], broker.ports["EXTERNAL"]
        assert internal != external and broker.port == internal
        here = ("127.0.0.1", internal)
        assert await _endpoints(internal) == ([here], [here], here)
        there = ("broker.example", 19092)
        assert await _endpoints(external) == ([there], [there], there)
        broker.stop()


async def test_the_first_listener_is_the_address_outside_a_connection(tmp_path):
    async with Broker(BrokerConfig(data_dir=tmp_path, listeners=_listeners()[::-1])) as broker:
        assert broker.advertised_address == ("broker.example", 19092)


async def test_a_listener_that_cannot_bind_stops_the_start_and_frees_the_others(tmp_path):
    taken = trio.socket.socket()
    await taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    listeners = (Listener("A", "PLAINTEXT", "127.0.0.1", 0), Listener("B", "PLAINTEXT", "127.0.0.1", port))
    try:
        try:
            async with Broker(BrokerConfig(data_dir=tmp_path / "one", listeners=listeners)):
                raise AssertionError("the broker started with a listener it could not bind")
        except OSError:
            pass
        # The lock and the first listener were released: the same directory opens again.
        async with Broker(BrokerConfig(data_dir=tmp_path / "one", listeners=listeners[:1])):
            pass
    finally:
        taken.close()
