"""broker.tls over real loopback sockets: a trio server accepting with accept_tls and serving a
broker Connection over TlsTransport, clients from Python's ssl (trio's SSLStream, or ssl's
memory BIOs where only the bytes a client sends are wanted)."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile

import outcome
import pytest
import trio

from broker.config import BrokerConfig
from broker.connection import Connection, RequestBudget
from broker.tls import (
    SslAuthenticationError,
    SslPrincipalMapper,
    TlsConfigError,
    TlsMismatch,
    accept_tls,
    looks_like_tls,
    principal,
    principal_mapper,
    server_context,
)
from interop.certificates import KEY_PASSWORD, TestCertificates
from log.file_records import FileRecords, SegmentFile

CLIENT_SUBJECT = "CN=client,OU=Eng,O=Example,C=US"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return TestCertificates(tmp_path_factory.mktemp("certificates"))


@pytest.fixture(scope="module")
def client_files(certificates):
    return certificates.client(CLIENT_SUBJECT)


def broker_context(certificates, **properties) -> ssl.SSLContext:
    given = {"ssl.keystore.location": str(certificates.broker.keystore)}
    given.update({name.replace("_", "."): value for name, value in properties.items()})
    return server_context(BrokerConfig(properties=given), "SSL")


def client_context(certificates, files=None, *, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certificates.ca))
    if files is not None:
        context.load_cert_chain(str(files.certificate), str(files.key))
    if version is not None:
        context.minimum_version = context.maximum_version = version
    return context


@pytest.fixture
async def listener():
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    async with listeners[0] as listener:
        yield listener


def port_of(listener) -> int:
    return listener.socket.getsockname()[1]


async def tls_client(port: int, context: ssl.SSLContext) -> trio.SSLStream:
    stream = trio.SSLStream(await trio.open_tcp_stream("127.0.0.1", port), context, server_hostname="localhost")
    await stream.do_handshake()
    return stream


async def handshake(listener, server: ssl.SSLContext, client: ssl.SSLContext):
    """Both sides of one handshake, each side's outcome (its transport or stream, or what it raised)."""
    results = {}

    async def accept():
        stream = await listener.accept()
        results["server"] = await outcome.acapture(accept_tls, stream, server, "SSL")
        if isinstance(results["server"], outcome.Error):
            await stream.aclose()

    async def connect():
        results["client"] = await outcome.acapture(tls_client, port_of(listener), client)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(accept)
            nursery.start_soon(connect)
    return results["server"], results["client"]


def frame(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


async def read_frame(stream) -> bytes:
    data = bytearray()
    while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
        chunk = await stream.receive_some(1 << 20)
        assert chunk, "the server closed the connection"
        data += chunk
    size = struct.unpack(">i", data[:4])[0]
    assert len(data) == 4 + size
    return bytes(data[4:])


async def serve(transport, answer) -> None:
    """A broker Connection over the transport, each request answered by answer(frame) -> chunks."""
    async def respond(request):
        chunks = answer(bytes(request))
        return [struct.pack(">i", sum(len(chunk) for chunk in chunks)), *chunks]

    try:
        await Connection(transport, 64 << 20, RequestBudget(256 << 20)).serve(respond)
    finally:
        await transport.aclose()


async def test_requests_and_responses_round_trip_in_order(listener, certificates):
    server, client = await handshake(listener, broker_context(certificates), client_context(certificates))
    transport, stream = server.unwrap(), client.unwrap()
    assert principal(transport, SslPrincipalMapper()) == "User:ANONYMOUS"
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, transport, lambda request: [b"re: ", request])
            # Pipelined in one write, then one at a time.
            await stream.send_all(b"".join(frame(b"request %d" % i) for i in range(20)))
            for i in range(20):
                assert await read_frame(stream) == b"re: request %d" % i
            for i in range(5):
                await stream.send_all(frame(b"single %d" % i))
                assert await read_frame(stream) == b"re: single %d" % i
            await stream.aclose()  # with close_notify: the server's connection ends of itself


async def test_large_transfers_and_file_slices_arrive_intact(listener, certificates, tmp_path):
    server, client = await handshake(listener, broker_context(certificates), client_context(certificates))
    transport, stream = server.unwrap(), client.unwrap()
    path = tmp_path / "00000000000000000000.log"
    path.write_bytes(os.urandom(9 << 20))
    segment = SegmentFile.open(path)
    file_bytes = path.read_bytes()
    request = os.urandom(6 << 20)

    def answer(received):
        assert received == request
        # A response as the fetch handler makes one: small header pieces, then file slices.
        return [b"header", memoryview(received)[:100], FileRecords(segment, 12345, 5 << 20), b"x" * 7,
                FileRecords(segment, 0, 3)]

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, transport, answer)
            await stream.send_all(frame(request))
            response = await read_frame(stream)
            await stream.aclose()
    expected = b"header" + request[:100] + file_bytes[12345:12345 + (5 << 20)] + b"x" * 7 + file_bytes[:3]
    assert hashlib.sha256(response).digest() == hashlib.sha256(expected).digest()


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
async def test_each_protocol_version_can_be_forced(listener, certificates, version):
    context = broker_context(certificates, ssl_enabled_protocols=version)
    server, client = await handshake(listener, context, client_context(certificates))
    transport, stream = server.unwrap(), client.unwrap()
    assert transport.version == version
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, transport, lambda request: [request[::-1]])
        await stream.send_all(frame(b"abc"))
        assert await read_frame(stream) == b"cba"
        await stream.aclose()


async def test_a_client_without_an_enabled_protocol_fails_the_handshake_with_the_reason(listener, certificates):
    server, _ = await handshake(listener, broker_context(certificates, ssl_enabled_protocols="TLSv1.3"),
                                client_context(certificates, version=ssl.TLSVersion.TLSv1_2))
    with pytest.raises(SslAuthenticationError, match="TLS handshake with a client of listener SSL failed: unsupported protocol"):
        server.unwrap()


async def test_client_auth_required_without_a_certificate_fails_the_handshake(listener, certificates):
    context = broker_context(certificates, ssl_client_auth="required", ssl_truststore_location=str(certificates.ca))
    # TLS 1.2: the server refuses before the client's handshake ends (in TLS 1.3 the client
    # learns of it at its first read).
    server, client = await handshake(listener, context, client_context(certificates, version=ssl.TLSVersion.TLSv1_2))
    with pytest.raises(SslAuthenticationError, match="the client sent no certificate, and ssl.client.auth is required"):
        server.unwrap()
    with pytest.raises(trio.BrokenResourceError):  # the client is told why (an alert) and fails
        client.unwrap()


async def test_client_auth_requested_without_a_certificate_gives_anonymous(listener, certificates):
    context = broker_context(certificates, ssl_client_auth="requested", ssl_truststore_location=str(certificates.ca))
    server, client = await handshake(listener, context, client_context(certificates))
    assert principal(server.unwrap(), SslPrincipalMapper()) == "User:ANONYMOUS"
    await client.unwrap().aclose()


@pytest.mark.parametrize("client_auth", ["requested", "required"])
@pytest.mark.parametrize("rules, expected", [
    ("DEFAULT", "User:" + CLIENT_SUBJECT),
    ("RULE:^CN=([^,]*),OU=Eng,.*$/$1-eng/U,DEFAULT", "User:CLIENT-ENG"),
])
async def test_a_client_certificate_gives_the_mapped_principal(listener, certificates, client_files, client_auth,
                                                               rules, expected):
    context = broker_context(certificates, ssl_client_auth=client_auth, ssl_truststore_location=str(certificates.ca))
    server, client = await handshake(listener, context, client_context(certificates, client_files))
    transport, stream = server.unwrap(), client.unwrap()
    assert principal(transport, SslPrincipalMapper(rules)) == expected
    # The handshake really ended on both sides: a request goes through.
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve, transport, lambda request: [request])
        await stream.send_all(frame(b"ping"))
        assert await read_frame(stream) == b"ping"
        await stream.aclose()


async def test_a_certificate_from_another_ca_is_not_trusted(listener, certificates, tmp_path):
    stranger = TestCertificates(tmp_path / "other-ca").client("CN=stranger")
    context = broker_context(certificates, ssl_client_auth="requested", ssl_truststore_location=str(certificates.ca))
    server, _ = await handshake(listener, context, client_context(certificates, stranger))
    with pytest.raises(SslAuthenticationError, match="the client's certificate is not trusted: unable to get local issuer"):
        server.unwrap()


async def test_a_client_that_does_not_trust_the_broker_is_named_as_refusing(listener, certificates, tmp_path):
    elsewhere = client_context(TestCertificates(tmp_path / "other-ca"))

    def connect():
        # A blocking ssl socket, which sends its alert (trio's SSLStream drops it).
        with socket.create_connection(("127.0.0.1", port_of(listener))) as raw:
            with pytest.raises(ssl.SSLCertVerificationError):
                elsewhere.wrap_socket(raw, server_hostname="localhost")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, connect)
            stream = await listener.accept()
            with pytest.raises(SslAuthenticationError, match="the client refused it with the alert unknown ca"):
                await accept_tls(stream, broker_context(certificates), "SSL")
            await stream.aclose()


async def test_a_certificate_no_rule_maps_fails_authentication(listener, certificates, client_files):
    context = broker_context(certificates, ssl_client_auth="required", ssl_truststore_location=str(certificates.ca))
    server, client = await handshake(listener, context, client_context(certificates, client_files))
    with pytest.raises(SslAuthenticationError, match="no rule of ssl.principal.mapping.rules applies to .* CN=client,OU=Eng"):
        principal(server.unwrap(), SslPrincipalMapper("RULE:^CN=admin,.*$/admin/"))
    await client.unwrap().aclose()


async def test_a_plaintext_kafka_client_on_a_tls_listener_is_told_apart_at_once(listener, certificates):
    context = broker_context(certificates)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            stream = await trio.open_tcp_stream("127.0.0.1", port_of(listener))
            # ApiVersions v3, as a plaintext client's first request; the client then waits.
            nursery.start_soon(stream.send_all, frame(struct.pack(">hhih", 18, 3, 1, 4) + b"test" + b"\x00" * 3))
            accepted = await listener.accept()
            with pytest.raises(TlsMismatch, match="^a plaintext client connected to TLS listener SSL "):
                await accept_tls(accepted, context, "SSL")
            await accepted.aclose()
            assert await stream.receive_some(100) == b""  # closed on the client
            await stream.aclose()


def client_hello(version: ssl.TLSVersion) -> bytes:
    """The first bytes an ssl client sends."""
    context = ssl.create_default_context()
    context.minimum_version = context.maximum_version = version
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_looks_like_tls_knows_a_client_hello_from_a_kafka_frame(version):
    assert looks_like_tls(client_hello(version)[:4])
    metadata_request = frame(struct.pack(">hhih", 3, 12, 7, -1) + b"\x01\x01\x00")
    assert not looks_like_tls(metadata_request[:4])
    # As a frame size, a ClientHello's first 4 bytes are the 369 MB it was mistaken for.
    assert struct.unpack(">i", client_hello(version)[:4])[0] > 369_000_000
    assert not looks_like_tls(b"\x16\x03")


async def test_a_client_closing_without_close_notify_reads_as_closed(listener, certificates):
    server, client = await handshake(listener, broker_context(certificates), client_context(certificates))
    transport, stream = server.unwrap(), client.unwrap()
    buffer = memoryview(bytearray(100))
    with trio.fail_after(5):
        # A round trip first: the client reads what the server sent after the handshake (TLS 1.3
        # session tickets), so that closing its socket is a FIN, not a reset for unread bytes.
        await stream.send_all(b"hello")
        await transport.wait_readable()
        assert bytes(buffer[:transport.try_receive_into(buffer)]) == b"hello"
        await transport.send_all([b"ack"])
        assert await stream.receive_some(10) == b"ack"
        await stream.send_all(b"last words")
        await stream.transport_stream.aclose()  # TCP closed, no close_notify
        await transport.wait_readable()
        assert bytes(buffer[:transport.try_receive_into(buffer)]) == b"last words"
        await transport.wait_readable()
        assert transport.try_receive_into(buffer) == 0
    await transport.aclose()


async def test_decrypted_bytes_not_yet_taken_do_not_wait_for_the_socket(listener, certificates):
    server, client = await handshake(listener, broker_context(certificates), client_context(certificates))
    transport, stream = server.unwrap(), client.unwrap()
    for i in range(3):  # three records
        await stream.send_all(b"%d" % i * 100)
    small = memoryview(bytearray(10))
    with trio.fail_after(5):
        while (received := transport.try_receive_into(small)) is None:
            await transport.wait_readable()
        taken = bytes(small[:received])
        # The rest is in the TLS layer (plaintext of a record read, ciphertext of the others):
        # the client sends nothing more, so a wait on the socket would never end.
        while len(taken) < 300:
            await transport.wait_readable()
            received = transport.try_receive_into(small)
            assert received
            taken += bytes(small[:received])
    assert taken == b"0" * 100 + b"1" * 100 + b"2" * 100
    await stream.aclose()
    await transport.aclose()


async def test_garbage_after_the_handshake_is_an_oserror(listener, certificates):
    server, client = await handshake(listener, broker_context(certificates), client_context(certificates))
    transport, stream = server.unwrap(), client.unwrap()
    # An application-data record whose bytes are not the client's encryption of anything.
    await stream.transport_stream.send_all(b"\x17\x03\x03\x00\x20" + os.urandom(32))
    buffer = memoryview(bytearray(100))
    with trio.fail_after(5), pytest.raises(OSError):
        while transport.try_receive_into(buffer) is None:
            await transport.wait_readable()
    await transport.aclose()
    await stream.transport_stream.aclose()


# The mapping rules: the cases of Kafka's SslPrincipalMapperTest, rewritten.

@pytest.mark.parametrize("rules", [
    "DEFAULT",
    "RULE:^CN=(.*?),OU=Users.*$/$1/",
    "RULE:^CN=(.*?),OU=Users.*$/$1/U, DEFAULT",
    "RULE:^CN=(.*?),OU=(.*?),O=(.*?),C=(.*?)$/$2:$1/",
    "RULE:^.*[Cc][Nn]=([a-z0-9.]*).*$/$1/L",
    "RULE:^CN=([^,DEFAULT,]+)(,.*|$)/$1/",
    # Across lines, as a properties value continued with backslashes keeps them (a line break
    # alone separates nothing, in Kafka as here).
    "RULE:^CN=([^,LU]+)(,.*|$)/$1/,\n  DEFAULT",
])
def test_valid_mapping_rules(rules):
    SslPrincipalMapper(rules)


@pytest.mark.parametrize("rules", [
    "default",
    "DEFAUL",
    "DEFAULT/U",
    "rule:^CN=(.*)$/$1/",
    "RULE:^CN=(.*)$/$1",
    "RULE:^CN=(.*)$/$1/U/L",
    "RULE:^CN=(.*)$/L",
    "RULE:^CN=(.*)$/$1/LU",
    "RULE:^CN=(.*$/$1/",  # a pattern that does not compile
])
def test_invalid_mapping_rules_are_refused_naming_the_property(rules):
    with pytest.raises(TlsConfigError, match="^ssl.principal.mapping.rules: invalid"):
        SslPrincipalMapper(rules)


def test_mapping_rules_apply_in_order():
    mapper = SslPrincipalMapper(", ".join([
        "RULE:^CN=(.*?),OU=Users.*$/$1/L",
        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L",
        "RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U",
        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U",
        "DEFAULT",
    ]))
    assert mapper.name("CN=Ada,OU=Users,O=Org,C=GB") == "ada"
    assert mapper.name("CN=Ada,OU=Ops,O=corp,L=Leeds,ST=WY,C=GB") == "ada@ops"
    assert mapper.name("cn=ada,ou=ops,dc=corp,dc=org") == "ADA@OPS"
    assert mapper.name("cN=ada,OU=Lab,O=Analytical Engines") == "ADA"
    assert mapper.name("OU=Lab,O=Analytical Engines,C=GB") == "OU=Lab,O=Analytical Engines,C=GB"


def test_a_replacement_names_groups_as_java_does():
    # $3 with two groups is the literal "$3"; \$ is a dollar; $12 with two groups is group 1 then "2".
    mapper = SslPrincipalMapper(r"RULE:^CN=(\w+),O=(\w+)$/$2.$1 $3 \$ $12/")
    assert mapper.name("CN=ada,O=lab") == "lab.ada $3 $ ada2"


def test_an_escaped_comma_in_a_subject_is_kept():
    mapper = SslPrincipalMapper(r"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT")
    assert mapper.name(r"CN=Lovelace\, Ada,OU=Lab,DC=example,DC=org") == r"Lovelace\, Ada"


@pytest.mark.parametrize("rules, expected", [
    ("", "[]"),
    (",  , ,,  ,", "[]"),
    ("  RULE:// ,  DEFAULT  ", "[RULE:/, DEFAULT]"),
    ("RULE:/.*/L", "[RULE:/.*/L]"),
    ("  RULE:   /   / ,DEFAULT", "[RULE:   /   , DEFAULT]"),
    (",,RULE:([a-z]+)/$1/U,,,DEFAULT,,", "[RULE:([a-z]+)/$1/U, DEFAULT]"),
    (r"RULE:\/\\\(\)/\/\//", r"[RULE:\/\\\(\)/\/\/]"),
    ("RULE:,RULE:,/,RULE:,\\//U,RULE:, DEFAULT, /DEFAULT/,DEFAULT",
     "[RULE:,RULE:,/,RULE:,\\//U, RULE:, DEFAULT, /DEFAULT, DEFAULT]"),
])
def test_mapping_rules_split_as_kafka_splits_them(rules, expected):
    assert repr(SslPrincipalMapper(rules)) == f"SslPrincipalMapper(rules = {expected})"


def test_principal_mapper_reads_the_listener_property():
    config = BrokerConfig(properties={"ssl.principal.mapping.rules": "RULE:^CN=(.*)$/$1/",
                                      "listener.name.ssl.ssl.principal.mapping.rules": "RULE:^CN=(.*)$/$1/U"})
    assert principal_mapper(config, "SSL").name("CN=x") == "X"
    assert principal_mapper(config, "OTHER").name("CN=x") == "x"
    with pytest.raises(TlsConfigError, match="^listener.name.ssl.ssl.principal.mapping.rules: invalid"):
        principal_mapper(BrokerConfig(properties={"listener.name.ssl.ssl.principal.mapping.rules": "nope"}), "SSL")


# Configuration.

def pem(path) -> str:
    return path.read_text()


def test_keystore_inline_and_encrypted_keys_load(certificates):
    broker = certificates.broker
    for properties in [
        {"ssl.keystore.location": str(broker.encrypted_keystore), "ssl.key.password": KEY_PASSWORD},
        {"ssl.keystore.certificate.chain": pem(broker.certificate), "ssl.keystore.key": pem(broker.key)},
        # On one line, as a properties value continued with backslashes comes out.
        {"ssl.keystore.certificate.chain": " ".join(pem(broker.certificate).split()),
         "ssl.keystore.key": " ".join(pem(broker.encrypted_key).split()), "ssl.key.password": KEY_PASSWORD,
         "ssl.truststore.certificates": " ".join(pem(certificates.ca).split()), "ssl.client.auth": "required",
         "ssl.keystore.type": "PEM", "ssl.truststore.type": "PEM"},
        {"listener.name.ssl.ssl.keystore.location": str(broker.keystore), "ssl.keystore.location": "/nowhere"},
    ]:
        context = server_context(BrokerConfig(properties=properties), "SSL")
        assert context.minimum_version == ssl.TLSVersion.TLSv1_2
        assert context.maximum_version == ssl.TLSVersion.TLSv1_3


def test_inline_keys_leave_no_temporary_file(certificates, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    server_context(BrokerConfig(properties={"ssl.keystore.certificate.chain": pem(certificates.broker.certificate),
                                            "ssl.keystore.key": pem(certificates.broker.key)}), "SSL")
    assert list(tmp_path.iterdir()) == []


def config_errors(certificates):
    broker = certificates.broker
    keystore = {"ssl.keystore.location": str(broker.keystore)}
    return [
        ({}, "ssl.keystore.location: TLS listener SSL needs a certificate and its private key"),
        ({"ssl.keystore.type": "JKS", **keystore}, "ssl.keystore.type: only PEM is supported, not JKS"),
        ({"ssl.truststore.type": "PKCS12", **keystore}, "ssl.truststore.type: only PEM is supported, not PKCS12"),
        ({"ssl.keystore.location": "/no/such/file.pem"}, "ssl.keystore.location: cannot read /no/such/file.pem: No such file"),
        ({"ssl.keystore.location": str(broker.certificate)}, r"ssl.keystore.location: must hold one PEM private key .* found 0"),
        ({"ssl.keystore.location": str(broker.key)}, "ssl.keystore.location: holds no PEM certificate"),
        ({"ssl.keystore.location": str(broker.encrypted_keystore)},
         "ssl.keystore.location: the private key is encrypted and ssl.key.password is not given"),
        ({"ssl.keystore.location": str(broker.encrypted_keystore), "ssl.key.password": "wrong"},
         "ssl.key.password: is not the password of the private key"),
        ({"listener.name.ssl.ssl.keystore.location": str(broker.encrypted_keystore), "ssl.key.password": "wrong"},
         "ssl.key.password: is not the password of the private key"),
        ({"ssl.keystore.certificate.chain": pem(broker.certificate), "ssl.keystore.key": pem(certificates.client("CN=other").key)},
         "ssl.keystore.key: the private key is not the first certificate's key"),
        ({"ssl.keystore.certificate.chain": pem(broker.certificate)}, "ssl.keystore.certificate.chain: is given without ssl.keystore.key"),
        ({"ssl.keystore.key": pem(broker.key)}, "ssl.keystore.key: is given without ssl.keystore.certificate.chain"),
        ({**keystore, "ssl.keystore.key": pem(broker.key), "ssl.keystore.certificate.chain": pem(broker.certificate)},
         "ssl.keystore.location: give either it or ssl.keystore.certificate.chain"),
        ({**keystore, "ssl.keystore.password": "x"}, "ssl.keystore.password: a PEM keystore has no password"),
        ({**keystore, "ssl.truststore.location": "/no/such/ca.pem"}, "ssl.truststore.location: cannot read /no/such/ca.pem"),
        ({**keystore, "ssl.truststore.location": str(broker.key)}, "ssl.truststore.location: holds no PEM certificate"),
        ({**keystore, "ssl.truststore.certificates": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"},
         "ssl.truststore.certificates: cannot load the CA certificates"),
        ({**keystore, "ssl.truststore.certificates": pem(certificates.ca), "ssl.truststore.location": str(certificates.ca)},
         "ssl.truststore.location: give either it or ssl.truststore.certificates"),
        ({**keystore, "ssl.truststore.location": str(certificates.ca), "ssl.truststore.password": "x"},
         "ssl.truststore.password: a PEM truststore has no password"),
        ({**keystore, "ssl.client.auth": "required"}, "ssl.client.auth: required needs the CA certificates"),
        ({**keystore, "ssl.client.auth": "requested"}, "ssl.client.auth: requested needs the CA certificates"),
        ({**keystore, "ssl.client.auth": "always"}, "ssl.client.auth: must be one of none, requested, required"),
        ({**keystore, "ssl.enabled.protocols": "TLSv1.1,TLSv1.2"}, "ssl.enabled.protocols: only TLSv1.2 and TLSv1.3 are supported, got TLSv1.1"),
        ({**keystore, "ssl.enabled.protocols": " , "}, "ssl.enabled.protocols: only TLSv1.2 and TLSv1.3 are supported, got none"),
        ({**keystore, "ssl.cipher.suites": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_NO_SUCH_SUITE"},
         "ssl.cipher.suites: unknown or unsupported cipher suite TLS_NO_SUCH_SUITE"),
        ({**keystore, "ssl.cipher.suites": "TLS_AES_128_GCM_SHA256", "ssl.enabled.protocols": "TLSv1.2"},
         "ssl.cipher.suites: names no TLS 1.2 cipher suite"),
    ]


def test_each_configuration_error_names_its_property(certificates):
    for properties, message in config_errors(certificates):
        with pytest.raises(TlsConfigError, match="^" + message):
            server_context(BrokerConfig(properties=properties), "SSL")


async def test_cipher_suites_limit_tls12(listener, certificates):
    # The broker's test key is ECDSA: an RSA-only suite list leaves no suite it can use.
    context = broker_context(certificates, ssl_enabled_protocols="TLSv1.2",
                             ssl_cipher_suites="TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")
    server, client = await handshake(listener, context, client_context(certificates))
    assert server.unwrap().cipher == "ECDHE-ECDSA-AES128-GCM-SHA256"
    await client.unwrap().aclose()
    context = broker_context(certificates, ssl_enabled_protocols="TLSv1.2",
                             ssl_cipher_suites="TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    server, _ = await handshake(listener, context, client_context(certificates))
    with pytest.raises(SslAuthenticationError, match="failed: no shared cipher"):
        server.unwrap()


def test_tls13_only_suites_turn_tls12_off(certificates):
    context = broker_context(certificates, ssl_cipher_suites="TLS_AES_256_GCM_SHA384")
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
async def test_a_tls13_key_update_from_the_client_is_answered(listener, certificates):
    # Python's ssl cannot send a key update; openssl s_client does, on a line "K" (update requested).
    client = await trio.lowlevel.open_process(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port_of(listener)}", "-tls1_3", "-CAfile",
         str(certificates.ca), "-servername", "localhost", "-no_ign_eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output = {client.stdout: bytearray(), client.stderr: bytearray()}

    async def client_prints(stream, expected: bytes) -> None:
        while expected not in output[stream]:
            data = await stream.receive_some(65536)
            assert data, f"s_client ended; it printed {bytes(output[stream])!r}"
            output[stream].extend(data)

    with trio.fail_after(10):
        transport = await accept_tls(await listener.accept(), broker_context(certificates), "SSL")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(serve, transport, lambda request: [b"echo:", request])
            await client.stdin.send_all(frame(b"before"))
            await client_prints(client.stdout, b"echo:before")
            await client.stdin.send_all(b"K\n")
            await client_prints(client.stderr, b"KEYUPDATE")  # sent (a read holding more would lose it)
            # This request is encrypted with the client's new keys, and the response (after the
            # server's own update) decrypts on the client.
            await client.stdin.send_all(frame(b"after"))
            await client_prints(client.stdout, b"echo:after")
            await client.stdin.aclose()  # s_client closes the connection: the server's ends
        await client.wait()
