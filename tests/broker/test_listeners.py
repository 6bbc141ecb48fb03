"""Several listeners: the broker accepts on each, and answers each client with the endpoints of
the listener it connected to (Kafka's advertised.listeners)."""

import dataclasses
import ssl

import pytest
import trio

from broker.config import BrokerConfig
from broker.listeners import Listener
from broker.server import Broker
from broker.session import ANONYMOUS, current_session
from broker.tls import TlsConfigError
from interop.certificates import KeyPair, TestCertificates
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


# TLS listeners, through the broker's own wiring.

@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> TestCertificates:
    return TestCertificates(tmp_path_factory.mktemp("certificates"))


def _tls_broker_config(tmp_path, certificates: TestCertificates, client_auth: str = "requested") -> BrokerConfig:
    return BrokerConfig(data_dir=tmp_path, request_read_timeout_ms=2000,
                        listeners=(Listener("PLAINTEXT", "PLAINTEXT", "127.0.0.1", 0),
                                   Listener("SSL", "SSL", "127.0.0.1", 0)),
                        properties={"ssl.keystore.type": "PEM", "ssl.keystore.location": str(certificates.broker.keystore),
                                    "ssl.truststore.location": str(certificates.ca), "ssl.client.auth": client_auth})


def _client_context(certificates: TestCertificates, client: KeyPair | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certificates.ca))
    if client is not None:
        context.load_cert_chain(str(client.certificate), str(client.key))
    return context


async def test_a_tls_listener_answers_and_names_the_client_by_its_certificate(tmp_path, nursery, certificates):
    client_pair = certificates.client("CN=alice,O=Example")
    sessions = []
    async with Broker(_tls_broker_config(tmp_path, certificates)) as broker:
        await nursery.start(broker.serve)
        original = broker.handle_frame

        async def recording(frame):
            sessions.append(current_session())
            return await original(frame)

        broker.handle_frame = recording
        for pair in (client_pair, None):
            stream = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", broker.ports["SSL"]),
                                    _client_context(certificates, pair), server_hostname="localhost")
            client = WireClient(stream)
            metadata = await client.request(ApiKey.METADATA, 12, {"topics": [], "allow_auto_topic_creation": False})
            assert [(b.host, b.port) for b in metadata.brokers] == [("127.0.0.1", broker.ports["SSL"])]
            await client.aclose()
        broker.stop()
    assert [(s.listener, s.security_protocol, s.principal) for s in sessions] == [
        ("SSL", "SSL", "User:CN=alice,O=Example"), ("SSL", "SSL", ANONYMOUS)]


async def test_the_wrong_protocol_on_a_port_is_one_clear_line_and_a_closed_connection(tmp_path, nursery, certificates,
                                                                                    caplog):
    async with Broker(_tls_broker_config(tmp_path, certificates)) as broker:
        await nursery.start(broker.serve)
        plaintext = await WireClient.connect(broker.ports["SSL"])
        await plaintext.send(ApiKey.API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"})
        assert await plaintext.receive_frame() is None
        await plaintext.aclose()
        stream = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", broker.ports["PLAINTEXT"]),
                                _client_context(certificates), server_hostname="localhost")
        with pytest.raises((trio.BrokenResourceError, ssl.SSLError)):
            await stream.do_handshake()
        await stream.transport_stream.aclose()
        broker.stop()
    closes = [record.getMessage() for record in caplog.records if "closing connection" in record.getMessage()]
    assert [close.split(": ", 1)[1] for close in closes] == [
        "closing connection: a plaintext client connected to TLS listener SSL (its first bytes are not a TLS record)",
        "closing connection: a TLS client connected to plaintext listener PLAINTEXT"]


async def test_required_client_auth_refuses_a_client_without_a_certificate(tmp_path, nursery, certificates, caplog):
    async with Broker(_tls_broker_config(tmp_path, certificates, client_auth="required")) as broker:
        await nursery.start(broker.serve)
        stream = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", broker.ports["SSL"]),
                                _client_context(certificates), server_hostname="localhost")
        client = WireClient(stream)
        # TLS 1.3 finishes the client's side of the handshake first: the refusal shows on the first read.
        with pytest.raises((trio.BrokenResourceError, ssl.SSLError)):
            await client.request(ApiKey.API_VERSIONS, 0, {})
        await stream.transport_stream.aclose()
        broker.stop()
    assert any("the client sent no certificate, and ssl.client.auth is required" in record.getMessage()
               for record in caplog.records)


async def test_a_bad_tls_setting_stops_the_start(tmp_path, certificates):
    config = dataclasses.replace(_tls_broker_config(tmp_path, certificates),
                                 properties={"ssl.keystore.type": "JKS", "ssl.keystore.location": "/nonexistent"})
    with pytest.raises(TlsConfigError, match="ssl.keystore.type"):
        async with Broker(config):
            pass
