"""TLS for the SSL and SASL_SSL listeners, configured with Kafka's ssl.* properties (PEM only).

TlsTransport is the Transport (broker.connection) of a TLS connection: the same non-blocking
system calls on the socket's descriptor as SocketTransport, with an ssl.SSLObject between them
and the connection over memory BIOs, so a request whose bytes are there still costs no pass
through the scheduler. File slices cannot go out with sendfile once they must be encrypted: they
are read and encrypted a piece at a time (Kafka, too, copies fetches on TLS connections).

accept_tls does the server handshake; server_context builds the listener's SSLContext from the
configuration; principal names a client by its certificate's subject, mapped through
ssl.principal.mapping.rules as Kafka's SslPrincipalMapper does.
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from broker.connection import Chunk, ConnectionClosed, FileSlice
from broker.listeners import kafka_list
from broker.session import ANONYMOUS

if TYPE_CHECKING:
    from broker.config import BrokerConfig

# Ciphertext read from the socket per system call: four full TLS records.
_RECEIVE_BYTES = 65536
# A TLS record's largest plaintext; small chunks are gathered up to this before encrypting, so a
# response of many small pieces does not become as many records.
_RECORD_BYTES = 16384
# Plaintext encrypted at once, and ciphertext held before it is handed to the kernel.
_ENCRYPT_BYTES = 262144
# A file slice is read this much at a time, so a large fetch never sits in memory whole.
_FILE_READ_BYTES = 1 << 20

_PROTOCOLS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
_DEFAULT_PROTOCOLS = "TLSv1.2,TLSv1.3"
_CLIENT_AUTH = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


class TlsConfigError(Exception):
    """An ssl.* property the broker cannot start with; the message names it and says why."""


class SslAuthenticationError(Exception):
    """A client's TLS handshake failed, or its certificate maps to no principal (Kafka's
    SslAuthenticationException); the message is one line saying why."""


class TlsMismatch(SslAuthenticationError):
    """A client that does not speak TLS (a plaintext Kafka client) connected to a TLS listener."""


def looks_like_tls(first_bytes: bytes) -> bool:
    """Whether a connection's first bytes are a TLS handshake record (a ClientHello): content type
    22, protocol version 3.0 to 3.4. A plaintext Kafka request starts with its 4-byte size, which
    would have to be over 369 MB to start so."""
    return len(first_bytes) >= 3 and first_bytes[0] == 0x16 and first_bytes[1] == 0x03 and first_bytes[2] <= 0x04


class TlsTransport:
    """A TLS connection's bytes (broker.connection.Transport): ciphertext moves between the
    socket and memory BIOs with non-blocking system calls, waiting through trio only when the
    kernel has nothing to give or no room to take.

    Made by accept_tls. Errors after the handshake are ssl.SSLError, an OSError, as a socket's are;
    a peer closing, with close_notify or without, reads as 0."""

    def __init__(self, stream: trio.SocketStream, context: ssl.SSLContext) -> None:
        self._stream = stream
        self._fd = stream.socket.fileno()
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        # Ciphertext taken from the outgoing BIO that the kernel has not taken yet.
        self._unsent = memoryview(b"")
        # Plaintext wait_readable decrypted to know there was some, for try_receive_into to give.
        self._stage = memoryview(bytearray(_RECORD_BYTES))
        self._staged = self._stage[:0]
        self._peer_closed = False

    @property
    def version(self) -> str | None:
        """The TLS version agreed ("TLSv1.3")."""
        return self._ssl.version()

    @property
    def cipher(self) -> str | None:
        """The cipher suite agreed, by OpenSSL's name."""
        cipher = self._ssl.cipher()
        return cipher and cipher[0]

    def peer_certificate(self) -> bytes | None:
        """The client's certificate (DER), None when it gave none."""
        return self._ssl.getpeercert(binary_form=True)

    def try_receive_into(self, buffer: memoryview) -> int | None:
        if self._staged:
            count = min(len(self._staged), len(buffer))
            buffer[:count] = self._staged[:count]
            self._staged = self._staged[count:]
            return count
        return self._decrypt_into(buffer)

    async def wait_readable(self) -> None:
        """Return once plaintext can be had: at once when some is decrypted or its ciphertext
        already received, else when a whole record has come in (a record split across TCP
        segments, or a post-handshake message alone, does not end the wait)."""
        # What a read made the TLS layer answer (a key update) goes out before the wait.
        await self._flush()
        waited = False
        while not (self._staged or self._peer_closed):
            received = self._decrypt_into(self._stage)
            if received is None:
                await trio.lowlevel.wait_readable(self._fd)
                waited = True
            else:
                self._staged = self._stage[:received]
        if not waited:
            await trio.lowlevel.checkpoint()

    async def send_all(self, chunks: Iterable[Chunk]) -> None:
        """Encrypt the chunks in order, small ones gathered into full records, file slices read a
        piece at a time, handing the ciphertext to the kernel as it accumulates."""
        gathered = bytearray()
        for chunk in chunks:
            if isinstance(chunk, (bytes, bytearray, memoryview)):
                if len(chunk) < _RECORD_BYTES:
                    gathered += chunk
                    if len(gathered) < _RECORD_BYTES:
                        continue
                    chunk, gathered = gathered, bytearray()
                elif gathered:
                    await self._encrypt(gathered)
                    gathered = bytearray()
                await self._encrypt(chunk)
                continue
            if gathered:
                await self._encrypt(gathered)
                gathered = bytearray()
            await self._send_file_slice(chunk)
        if gathered:
            await self._encrypt(gathered)
        await self._flush()

    async def aclose(self) -> None:
        """Send close_notify if the kernel has room for it at once, and close the socket."""
        with contextlib.suppress(OSError):
            self._ssl.unwrap()  # writes close_notify, then wants the client's: not waited for
        with contextlib.suppress(OSError):
            self._send_ciphertext()
        await self._stream.aclose()

    async def _handshake(self, listener_name: str) -> None:
        first_bytes = b""
        while True:
            try:
                self._ssl.do_handshake()
                break
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as exc:
                with contextlib.suppress(OSError):
                    self._send_ciphertext()  # the alert, so that the client, too, knows why
                raise SslAuthenticationError(_handshake_failure(exc, listener_name)) from None
            await self._flush()
            while (received := self._receive_ciphertext()) is None:
                await trio.lowlevel.wait_readable(self._fd)
            if not received:
                # Connected and closed (a port check), or closed before the handshake ended (a
                # client shutting down): nothing to report. A client that refuses the handshake
                # sends an alert first, which the handshake raises.
                raise ConnectionClosed()
            if len(first_bytes) < 3:
                first_bytes += received[:3]
                if len(first_bytes) >= 3 and not looks_like_tls(first_bytes):
                    raise TlsMismatch(f"a plaintext client connected to TLS listener {listener_name} "
                                      f"(its first bytes are not a TLS record)")
        # The last handshake flight and TLS 1.3's session tickets.
        await self._flush()

    def _decrypt_into(self, buffer: memoryview) -> int | None:
        """Decrypt into `buffer` what has arrived, without waiting: how many bytes, 0 once the peer
        has closed, None while no whole record has arrived."""
        received = 0
        while not self._peer_closed and received < len(buffer):
            try:
                count = self._ssl.read(len(buffer) - received, buffer[received:])
            except ssl.SSLWantReadError:
                # Records decrypted already are given without another system call to look for more.
                if received or self._receive_ciphertext() is None:
                    break
                continue
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                count = 0
            if not count:  # close_notify (read gives 0), or the socket closed without it
                self._peer_closed = True
                break
            received += count
        if self._outgoing.pending:
            self._send_ciphertext()  # a post-handshake answer (key update): goes with the next flush if no room
        if received:
            return received
        return 0 if self._peer_closed else None

    def _receive_ciphertext(self) -> bytes | None:
        """Move what the kernel has into the incoming BIO: the bytes (b"" at end of stream), or
        None when there are none yet."""
        try:
            data = os.read(self._fd, _RECEIVE_BYTES)
        except BlockingIOError:
            return None
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()
        return data

    async def _encrypt(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        for start in range(0, len(view), _ENCRYPT_BYTES):
            # The outgoing BIO grows as needed, so write never wants to write; renegotiation,
            # the one thing that could make it want to read, is off (server_context).
            self._ssl.write(view[start:start + _ENCRYPT_BYTES])
            if self._outgoing.pending >= _ENCRYPT_BYTES:
                await self._flush()

    async def _send_file_slice(self, file_slice: FileSlice) -> None:
        fd, position, remaining = file_slice.fileno(), file_slice.position, len(file_slice)
        while remaining:
            data = os.pread(fd, min(remaining, _FILE_READ_BYTES), position)
            if not data:
                raise ConnectionClosed()  # the file ends before the slice does, as sendfile would find
            await self._encrypt(data)
            position += len(data)
            remaining -= len(data)

    async def _flush(self) -> None:
        """Hand the kernel all the ciphertext there is, waiting for room as needed."""
        while self._send_ciphertext():
            await trio.lowlevel.wait_writable(self._fd)

    def _send_ciphertext(self) -> bool:
        """Hand the kernel the ciphertext it has room for; whether some is left."""
        while True:
            if not self._unsent:
                if not self._outgoing.pending:
                    return False
                self._unsent = memoryview(self._outgoing.read())
            try:
                sent = os.write(self._fd, self._unsent)
            except BlockingIOError:
                return True
            self._unsent = self._unsent[sent:]


async def accept_tls(stream: trio.SocketStream, context: ssl.SSLContext, listener_name: str) -> TlsTransport:
    """The server side of a TLS handshake on a new connection of `listener_name`, context being
    server_context's for it. The caller bounds it with a deadline.

    Raises TlsMismatch when the client's first bytes are not TLS, SslAuthenticationError when the
    handshake fails (its message says why, in one line), ConnectionClosed when the client closes
    before the handshake ends, OSError when the connection fails."""
    transport = TlsTransport(stream, context)
    await transport._handshake(listener_name)
    return transport


def _handshake_failure(exc: ssl.SSLError, listener_name: str) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        why = f"the client's certificate is not trusted: {exc.verify_message}"
    elif exc.reason == "PEER_DID_NOT_RETURN_A_CERTIFICATE":
        why = "the client sent no certificate, and ssl.client.auth is required"
    elif exc.reason and "ALERT" in exc.reason:
        # The client refused the handshake (most often: it does not trust the broker's certificate).
        why = f"the client refused it with the alert {exc.reason.split('ALERT_', 1)[-1].replace('_', ' ').lower()}"
    else:
        why = (exc.reason or str(exc)).replace("_", " ").lower()
    return f"TLS handshake with a client of listener {listener_name} failed: {why}"


# Configuration.

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_BASE64 = re.compile(r"[A-Za-z0-9+/=\s]*")


def _pem_blocks(text: str) -> list[tuple[str, str]]:
    """The PEM blocks of `text` as (label, block), each block in the line layout OpenSSL reads:
    Kafka takes inline PEM on one line (a properties value continued with backslashes loses its
    line breaks), and so does this."""
    blocks = []
    for match in _PEM_BLOCK.finditer(text):
        label, body = match[1], match[2]
        if _BASE64.fullmatch(body):
            body = re.sub(r"\s", "", body)
            body = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
        blocks.append((label, f"-----BEGIN {label}-----\n{body.strip()}\n-----END {label}-----\n"))
    return blocks


def _is_key(label: str) -> bool:
    return label.endswith("PRIVATE KEY")


def _is_encrypted(label: str, block: str) -> bool:
    return label == "ENCRYPTED PRIVATE KEY" or "Proc-Type: 4,ENCRYPTED" in block


class _ListenerProperties:
    """A listener's ssl.* properties, each error naming the property as it was given."""

    def __init__(self, config: BrokerConfig, listener_name: str) -> None:
        self._config = config
        self.listener = listener_name

    def name(self, name: str) -> str:
        return self._config.listener_property_name(self.listener, name)

    def get(self, name: str) -> str | None:
        value = self._config.listener_property(self.listener, name)
        return (value.strip() or None) if value is not None else None

    def error(self, name: str, reason: str) -> TlsConfigError:
        return TlsConfigError(f"{self.name(name)}: {reason}")

    def read_file(self, name: str, path: str) -> str:
        try:
            return Path(path).read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            raise self.error(name, f"cannot read {path}: {exc.strerror or exc}") from None


def server_context(config: BrokerConfig, listener_name: str) -> ssl.SSLContext:
    """The SSLContext of TLS listener `listener_name` from its ssl.* properties (each as
    listener.name.<listener>.<name> or <name>): PEM keystores and truststores only. Raises
    TlsConfigError naming the property at fault.

    It reads files, so it blocks: call it at start, off the event loop (trio.to_thread.run_sync)."""
    props = _ListenerProperties(config, listener_name)
    for name in ("ssl.keystore.type", "ssl.truststore.type"):
        kind = props.get(name)
        if kind is not None and kind.upper() != "PEM":
            raise props.error(name, f"only PEM is supported, not {kind}: convert the store to PEM files "
                                    f"(a private key and certificate chain; CA certificates)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # Renegotiation (TLS 1.2) is a way to make a server work hard, and no Kafka client needs it.
    context.options |= ssl.OP_NO_RENEGOTIATION
    _set_protocols(context, props)
    _load_keystore(context, props)
    trusted = _load_truststore(context, props)
    client_auth = (props.get("ssl.client.auth") or "none").lower()
    if client_auth not in _CLIENT_AUTH:
        raise props.error("ssl.client.auth", f"must be one of {', '.join(_CLIENT_AUTH)}, got {client_auth!r}")
    if client_auth != "none" and not trusted:
        raise props.error("ssl.client.auth", f"{client_auth} needs the CA certificates that client certificates "
                                             f"are checked against: give ssl.truststore.location or "
                                             f"ssl.truststore.certificates")
    context.verify_mode = _CLIENT_AUTH[client_auth]
    _set_cipher_suites(context, props)
    return context


def _set_protocols(context: ssl.SSLContext, props: _ListenerProperties) -> None:
    names = kafka_list(props.get("ssl.enabled.protocols") or _DEFAULT_PROTOCOLS)
    unknown = [name for name in names if name not in _PROTOCOLS]
    if unknown or not names:
        raise props.error("ssl.enabled.protocols", f"only TLSv1.2 and TLSv1.3 are supported, got "
                                                   f"{', '.join(unknown) or 'none'}")
    versions = sorted(_PROTOCOLS[name] for name in names)
    context.minimum_version, context.maximum_version = versions[0], versions[-1]


def _load_keystore(context: ssl.SSLContext, props: _ListenerProperties) -> None:
    location = props.get("ssl.keystore.location")
    chain = props.get("ssl.keystore.certificate.chain")
    key = props.get("ssl.keystore.key")
    if props.get("ssl.keystore.password") is not None:
        raise props.error("ssl.keystore.password", "a PEM keystore has no password: give the private key's "
                                                   "password, if it is encrypted, as ssl.key.password")
    if location and (chain or key):
        raise props.error("ssl.keystore.location", "give either it or ssl.keystore.certificate.chain and "
                                                   "ssl.keystore.key, not both")
    if bool(chain) != bool(key):
        given, missing = ("ssl.keystore.certificate.chain", "ssl.keystore.key") if chain else \
            ("ssl.keystore.key", "ssl.keystore.certificate.chain")
        raise props.error(given, f"is given without {missing}")
    if location:
        blocks = _pem_blocks(props.read_file("ssl.keystore.location", location))
        _check_keystore(props, blocks, "ssl.keystore.location", "ssl.keystore.location")
        _load_cert_chain(context, props, "ssl.keystore.location", location, blocks)
    elif chain:
        blocks = _pem_blocks(key) + _pem_blocks(chain)
        _check_keystore(props, blocks, "ssl.keystore.certificate.chain", "ssl.keystore.key")
        # ssl loads a key and certificate from files only: a private one (mode 0600), removed at once.
        descriptor, path = tempfile.mkstemp(suffix=".pem")
        try:
            with os.fdopen(descriptor, "w") as file:
                file.write("".join(block for _, block in blocks))
            _load_cert_chain(context, props, "ssl.keystore.key", path, blocks)
        finally:
            os.unlink(path)
    else:
        raise props.error("ssl.keystore.location", f"TLS listener {props.listener} needs a certificate and its "
                                                   f"private key: give ssl.keystore.location (a PEM file with both) "
                                                   f"or ssl.keystore.certificate.chain and ssl.keystore.key")


def _check_keystore(props: _ListenerProperties, blocks: list[tuple[str, str]], certificates_from: str,
                    key_from: str) -> None:
    if not any(label == "CERTIFICATE" for label, _ in blocks):
        raise props.error(certificates_from, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    keys = [(label, block) for label, block in blocks if _is_key(label)]
    if len(keys) != 1:
        raise props.error(key_from, f"must hold one PEM private key (-----BEGIN PRIVATE KEY-----), found {len(keys)}")
    if _is_encrypted(*keys[0]) and props.get("ssl.key.password") is None:
        raise props.error(key_from, "the private key is encrypted and ssl.key.password is not given")


def _load_cert_chain(context: ssl.SSLContext, props: _ListenerProperties, name: str, path: str,
                     blocks: list[tuple[str, str]]) -> None:
    password = props.get("ssl.key.password")
    encrypted = any(_is_key(label) and _is_encrypted(label, block) for label, block in blocks)
    try:
        # A password that is not a callable is never asked for interactively by OpenSSL.
        context.load_cert_chain(path, password=password or "")
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise props.error(name, "the private key is not the first certificate's key") from None
        if encrypted:
            raise props.error("ssl.key.password", "is not the password of the private key "
                                                  f"(or the key cannot be read: {exc.reason or exc})") from None
        raise props.error(name, f"cannot load the certificate chain and private key: {exc.reason or exc}") from None


def _load_truststore(context: ssl.SSLContext, props: _ListenerProperties) -> bool:
    """Load the CA certificates client certificates are checked against; whether there are any."""
    location = props.get("ssl.truststore.location")
    inline = props.get("ssl.truststore.certificates")
    if props.get("ssl.truststore.password") is not None:
        raise props.error("ssl.truststore.password", "a PEM truststore has no password")
    if location and inline:
        raise props.error("ssl.truststore.location", "give either it or ssl.truststore.certificates, not both")
    if not (location or inline):
        return False
    name = "ssl.truststore.location" if location else "ssl.truststore.certificates"
    blocks = _pem_blocks(props.read_file(name, location) if location else inline)
    certificates = "".join(block for label, block in blocks if label == "CERTIFICATE")
    if not certificates:
        raise props.error(name, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        context.load_verify_locations(cadata=certificates)
    except ssl.SSLError as exc:
        raise props.error(name, f"cannot load the CA certificates: {exc.reason or exc}") from None
    return True


# Kafka's cipher suite names (IANA's, as Java has them) for the TLS 1.2 suites OpenSSL offers by
# default, with OpenSSL's names; TLS 1.3 suites have the same name in both.
_TLS12_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384": "DHE-RSA-AES256-GCM-SHA384",
    "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256": "DHE-RSA-AES128-GCM-SHA256",
    "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "DHE-RSA-CHACHA20-POLY1305",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
}


def _set_cipher_suites(context: ssl.SSLContext, props: _ListenerProperties) -> None:
    """ssl.cipher.suites: the TLS 1.2 suites allowed, by Kafka's (IANA) name or OpenSSL's. TLS 1.3
    suites are checked to be ones OpenSSL has, but Python's ssl cannot narrow them, so all of
    OpenSSL's (all AEAD) stay on; a list with no TLS 1.2 suite turns TLS 1.2 off."""
    given = props.get("ssl.cipher.suites")
    if given is None:
        return
    tls13 = {cipher["name"] for cipher in context.get_ciphers() if cipher["protocol"] == "TLSv1.3"}
    tls12 = []
    for suite in kafka_list(given):
        if suite in tls13:
            continue
        openssl_name = _TLS12_SUITES.get(suite, suite)
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).set_ciphers(openssl_name)
        except ssl.SSLError:
            raise props.error("ssl.cipher.suites", f"unknown or unsupported cipher suite {suite}") from None
        tls12.append(openssl_name)
    if tls12:
        context.set_ciphers(":".join(tls12))
    elif context.minimum_version == ssl.TLSVersion.TLSv1_2:
        if context.maximum_version == ssl.TLSVersion.TLSv1_2:
            raise props.error("ssl.cipher.suites", "names no TLS 1.2 cipher suite, and ssl.enabled.protocols "
                                                   "enables TLSv1.2 only")
        context.minimum_version = ssl.TLSVersion.TLSv1_3


# Principals.

# Kafka's SslPrincipalMapper grammar: a rule is DEFAULT or RULE:pattern/replacement/ with an
# optional L or U (backslash escapes allowed in pattern and replacement); rules are separated by
# commas, and anything else is an invalid rule.
_RULE = r"(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)"
_RULE_SPLITTER = re.compile(r"\s*(" + _RULE + r")\s*(,\s*|$)")
_RULE_PARSER = re.compile(_RULE)
# Java's named group (?<name>...) is Python's (?P<name>...); lookbehinds (?<= (?<! are the same.
_JAVA_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")


class _Rule:
    def __init__(self, pattern: str | None = None, replacement: str = "", case: str = "") -> None:
        self.source = pattern
        self.replacement = replacement
        self.case = case
        self.pattern = None if pattern is None else re.compile(_JAVA_NAMED_GROUP.sub("(?P<", pattern))

    def apply(self, name: str) -> str | None:
        if self.pattern is None:
            return name
        if not self.pattern.fullmatch(name):
            return None
        result = self.pattern.sub(lambda match: _java_replacement(self.replacement, match), name)
        return result.lower() if self.case == "L" else result.upper() if self.case == "U" else result

    def __repr__(self) -> str:
        if self.pattern is None:
            return "DEFAULT"
        return f"RULE:{self.source}/{self.replacement}" + (f"/{self.case}" if self.case else "")


def _java_replacement(replacement: str, match: re.Match) -> str:
    """Java's Matcher.appendReplacement: \\c is c, $n group n (digits taken while they name a group),
    ${name} a named group; Kafka's mapper makes $n literal where n is no group at all."""
    groups = match.re.groups
    out = []
    i = 0
    while i < len(replacement):
        c = replacement[i]
        if c == "\\" and i + 1 < len(replacement):
            out.append(replacement[i + 1])
            i += 2
        elif c == "$" and i + 1 < len(replacement) and replacement[i + 1] == "{":
            end = replacement.index("}", i)
            out.append(match.group(replacement[i + 2:end]) or "")
            i = end + 1
        elif c == "$" and i + 1 < len(replacement) and replacement[i + 1].isdigit() and \
                groups and int(replacement[i + 1]) <= groups:
            number = int(replacement[i + 1])
            i += 2
            while i < len(replacement) and replacement[i].isdigit() and number * 10 + int(replacement[i]) <= groups:
                number = number * 10 + int(replacement[i])
                i += 1
            out.append(match.group(number) or "")
        else:
            out.append(c)
            i += 1
    return "".join(out)


class SslPrincipalMapper:
    """ssl.principal.mapping.rules: the first rule whose pattern matches a certificate subject's
    whole distinguished name rewrites it into the principal's name; DEFAULT keeps it as it is.
    Raises TlsConfigError for an invalid rule."""

    def __init__(self, rules: str = "DEFAULT", property_name: str = "ssl.principal.mapping.rules") -> None:
        self.rules = []
        for match in _RULE_SPLITTER.finditer(rules.strip()):
            rule = match[1]
            parsed = _RULE_PARSER.match(rule)
            if parsed.end() != len(rule):
                raise TlsConfigError(f"{property_name}: invalid rule {rule!r}"
                                     + (f" (unmatched {rule[parsed.end():]!r})" if parsed.end() else ""))
            if parsed[1] is not None:
                self.rules.append(_Rule())
            elif parsed[2] is not None:
                try:
                    self.rules.append(_Rule(parsed[2], parsed[4], parsed[6]))
                except re.error as exc:
                    raise TlsConfigError(f"{property_name}: invalid pattern in rule {rule!r}: {exc}") from None
            # An empty rule is ignored, as Kafka does.

    def name(self, distinguished_name: str) -> str:
        """The principal name of a subject (RFC 2253 form); SslAuthenticationError when no rule applies."""
        for rule in self.rules:
            mapped = rule.apply(distinguished_name)
            if mapped is not None:
                return mapped
        raise SslAuthenticationError(f"no rule of ssl.principal.mapping.rules applies to the client "
                                     f"certificate's subject {distinguished_name}")

    def __repr__(self) -> str:
        return f"SslPrincipalMapper(rules = [{', '.join(map(repr, self.rules))}])"


def principal_mapper(config: BrokerConfig, listener_name: str) -> SslPrincipalMapper:
    """The listener's ssl.principal.mapping.rules (Kafka's default: DEFAULT), parsed: call at start,
    so that a bad rule stops the broker there (TlsConfigError)."""
    props = _ListenerProperties(config, listener_name)
    return SslPrincipalMapper(props.get("ssl.principal.mapping.rules") or "DEFAULT",
                              props.name("ssl.principal.mapping.rules"))


def principal(transport: TlsTransport, mapper: SslPrincipalMapper) -> str:
    """The client's Kafka principal: "User:" and its certificate's subject, as Java's
    X500Principal.getName() writes it, mapped by `mapper`; User:ANONYMOUS without a certificate.
    Raises SslAuthenticationError when no rule applies (Kafka fails the authentication)."""
    certificate = transport.peer_certificate()
    if certificate is None:
        return ANONYMOUS
    return "User:" + mapper.name(subject_name(certificate))


# The subject's distinguished name, from the certificate's DER.

# The attribute types Java's RFC 2253 form names by keyword; any other is written as its OID.
_RFC2253_KEYWORDS = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O", "2.5.4.11": "OU",
    "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
}
# The DER string types Java writes as text, and how they decode: PrintableString, T61String,
# IA5String, GeneralString, BMPString, UTF8String.
_STRING_TAGS = {0x13: "latin-1", 0x14: "latin-1", 0x16: "latin-1", 0x1B: "latin-1", 0x1E: "utf-16-be", 0x0C: "utf-8"}
# The characters Java's AVA.toRFC2253String escapes with a backslash (RFC 2253's, and = and #).
_ESCAPED = frozenset(',=+<>#;"\\')


def _der(data: bytes, position: int) -> tuple[int, int, int]:
    """The DER element at `position`: its tag, where its content starts and where it ends."""
    tag, length = data[position], data[position + 1]
    position += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[position:position + count], "big")
        position += count
    if position + length > len(data):
        raise ValueError("truncated DER")
    return tag, position, position + length


def _der_children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """The elements inside [start, end): (tag, content start, content end, element start)."""
    children = []
    while start < end:
        tag, content, after = _der(data, start)
        children.append((tag, content, after, start))
        start = after
    return children


def _oid(content: bytes) -> str:
    arcs, value = [], 0
    for byte in content:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def _rfc2253_value(text: str) -> str:
    escaped = "".join("\\00" if c == "\0" else "\\" + c if c in _ESCAPED else c for c in text)
    # Then leading and trailing spaces (and carriage returns) are escaped too.
    lead = len(escaped) - len(escaped.lstrip(" \r"))
    trail = len(escaped.rstrip(" \r")) if lead < len(escaped) else len(escaped)
    return "".join("\\" + c if i < lead or i >= trail else c for i, c in enumerate(escaped))


def subject_name(certificate: bytes) -> str:
    """A DER certificate's subject in RFC 2253 form, as Java's X500Principal.getName() gives it
    (Kafka's principal name before mapping): most specific RDN first, keywords for the types RFC
    2253 names, other types as OID=#hex of the DER value."""
    _, start, end = _der(certificate, 0)
    _, start, end = _der(certificate, start)  # tbsCertificate
    fields = _der_children(certificate, start, end)
    if fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    _, start, end, _ = fields[4]  # serialNumber, signature, issuer, validity, subject
    rdns = []
    for _, set_start, set_end, _ in _der_children(certificate, start, end):
        values = []
        for _, attribute_start, attribute_end, _ in _der_children(certificate, set_start, set_end):
            (_, oid_start, oid_end, _), (tag, value_start, value_end, element_start) = \
                _der_children(certificate, attribute_start, attribute_end)
            oid = _oid(certificate[oid_start:oid_end])
            keyword = _RFC2253_KEYWORDS.get(oid)
            if keyword is None or tag not in _STRING_TAGS:
                values.append(f"{keyword or oid}=#{certificate[element_start:value_end].hex()}")
            else:
                text = certificate[value_start:value_end].decode(_STRING_TAGS[tag], errors="replace")
                values.append(f"{keyword}={_rfc2253_value(text)}")
        rdns.append("+".join(values))
    return ",".join(reversed(rdns))
