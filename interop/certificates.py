"""Test certificates, made at test time with trustme (no key material is committed): a CA, the
broker's certificate for 127.0.0.1 and localhost, and client certificates with the subjects the
tests choose, written as PEM files for the broker's ssl.* properties and the clients' settings."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

# The password of the encrypted private keys (ssl.key.password, the clients' ssl.key.password).
KEY_PASSWORD = "comlog-test-key-password"


@dataclasses.dataclass(frozen=True)
class KeyPair:
    """One party's PEM files."""
    # The certificate chain, leaf first (confluent-kafka's ssl.certificate.location).
    certificate: Path
    # The private key, unencrypted (ssl.key.location) and encrypted with KEY_PASSWORD.
    key: Path
    encrypted_key: Path
    # The private key and the chain in one file (Kafka's ssl.keystore.location), unencrypted and encrypted.
    keystore: Path
    encrypted_keystore: Path


class TestCertificates:
    """A CA of its own, and the key pairs it signs, written into `directory`."""

    __test__ = False  # not a pytest test class

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._ca = trustme.CA(organization_name="ComLog test CA")
        # The CA certificate: the truststore of the broker and of the clients (ssl.ca.location).
        self.ca = self.directory / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca))
        leaf = self._ca.issue_cert("127.0.0.1", "localhost", "::1", common_name="localhost")
        self.broker = self._write("broker", leaf.private_key_pem.bytes(), [pem.bytes() for pem in leaf.cert_chain_pems])

    def client(self, subject: str, name: str | None = None) -> KeyPair:
        """A client certificate whose subject is `subject`, written as an RFC 4514 string, most
        specific first ("CN=client,OU=Eng,O=Example,C=US"), signed by the CA; its files are named
        after `name` (default: the subject's first value)."""
        issuer = x509.load_pem_x509_certificate(self._ca.cert_pem.bytes())
        issuer_key = serialization.load_pem_private_key(self._ca.private_key_pem.bytes(), password=None)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name.from_rfc4514_string(subject))
            .issuer_name(issuer.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
            .sign(issuer_key, hashes.SHA256())
        )
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        file_name = name or subject.split(",", 1)[0].split("=", 1)[-1]
        return self._write(f"client-{file_name}", key_pem, [certificate.public_bytes(serialization.Encoding.PEM)])

    def _write(self, name: str, key_pem: bytes, chain: list[bytes]) -> KeyPair:
        key = serialization.load_pem_private_key(key_pem, password=None)
        encrypted_key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.BestAvailableEncryption(KEY_PASSWORD.encode()))
        files = KeyPair(*(self.directory / f"{name}{suffix}" for suffix in
                          (".crt", ".key", ".encrypted.key", ".keystore.pem", ".encrypted.keystore.pem")))
        files.certificate.write_bytes(b"".join(chain))
        files.key.write_bytes(key_pem)
        files.encrypted_key.write_bytes(encrypted_key_pem)
        files.keystore.write_bytes(key_pem + b"".join(chain))
        files.encrypted_keystore.write_bytes(encrypted_key_pem + b"".join(chain))
        for path in (files.key, files.encrypted_key, files.keystore, files.encrypted_keystore):
            path.chmod(0o600)
        return files
