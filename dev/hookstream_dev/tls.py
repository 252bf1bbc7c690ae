"""A throwaway certificate authority for the secured local broker, and the certificates it signs.

Everything is PEM, which both sides read as it is: Kafka (`ssl.keystore.type=PEM`,
`ssl.truststore.type=PEM`) and librdkafka (`ssl.ca.location`, `ssl.certificate.location`,
`ssl.key.location`). Keys are unencrypted files readable by their owner only: the folder they
sit in is the secret, as a Kubernetes Secret volume would be.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR = datetime.timedelta(days=365)


@dataclass(frozen=True)
class Identity:
    """A certificate (leaf first, then the CA) and its private key, as PEM files."""

    cert: Path
    key: Path

    def keystore(self) -> Path:
        """Key and chain in one file: the shape of Kafka's `ssl.keystore.type=PEM`."""
        return self.cert.with_suffix(".keystore.pem")


def write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


class CertificateAuthority:
    """A CA kept in `folder` (ca.pem, ca.key): made on first use, reused after."""

    def __init__(self, folder: Path, name: str = "hookstream local CA") -> None:
        self.folder = folder
        self.cert_file = folder / "ca.pem"
        self._key_file = folder / "ca.key"
        if not self.cert_file.exists():
            self._create(name)

    def _create(self, name: str) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(key, hashes.SHA256())
        )
        write_private(self._key_file, _key_pem(key))
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, common_name: str, hosts: tuple[str, ...] = (), folder: Path | None = None) -> Identity:
        """A certificate for `common_name` (Kafka's principal, see the broker's mapping rule),
        valid as a server for `hosts` and as a client, written to `folder` (default: the CA's).
        Issued again on every call."""
        ca_key = _load_key(self._key_file)
        ca_cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALID_FOR)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
        )
        if hosts:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        where = folder or self.folder
        identity = Identity(where / f"{common_name}.pem", where / f"{common_name}.key")
        chain = cert.public_bytes(serialization.Encoding.PEM) + self.cert_file.read_bytes()
        write_private(identity.key, _key_pem(key))
        identity.cert.write_bytes(chain)
        write_private(identity.keystore(), _key_pem(key) + chain)
        return identity
