"""`python -m hookstream_dev.secure_files DIR`: the files docker-compose.secure.yml mounts.

Writes, once (existing files are kept, so a rerun never changes a running stack's secrets):
  DIR/tls/ca.pem                 the throwaway CA every client trusts
  DIR/tls/broker.keystore.pem    the broker's key and certificate (names: kafka, localhost)
  DIR/tls/admin.pem, admin.key   the `admin` super user's client certificate (kafka-setup only)
  DIR/tls/admin.properties       the same, for Kafka's own tools (the broker's health check)
  DIR/passwords/<role>           one SCRAM password per role (`hookstream acls show`)
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from hookstream_dev.tls import CertificateAuthority, write_private

BROKER_HOSTS = ("kafka", "localhost")


def new_password(path: Path) -> Path:
    """A random password in `path` (owner-readable only), made once."""
    if not path.exists():
        write_private(path, (secrets.token_urlsafe(24) + "\n").encode())
    return path


def write(folder: Path, roles: list[str]) -> list[Path]:
    tls = folder / "tls"
    ca = CertificateAuthority(tls)
    if not (tls / "broker.keystore.pem").exists():
        ca.issue("broker", hosts=BROKER_HOSTS)
    if not (tls / "admin.pem").exists():
        ca.issue("admin")
    properties = tls / "admin.properties"
    if not properties.exists():
        # Paths as the kafka container mounts DIR/tls (/etc/kafka/secure).
        properties.write_text(
            "security.protocol=SSL\n"
            "ssl.keystore.type=PEM\nssl.keystore.location=/etc/kafka/secure/admin.keystore.pem\n"
            "ssl.truststore.type=PEM\nssl.truststore.location=/etc/kafka/secure/ca.pem\n"
        )
    passwords = [new_password(folder / "passwords" / role) for role in roles]
    return [ca.cert_file, properties, *passwords]


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit("usage: python -m hookstream_dev.secure_files DIR   (e.g. deploy/compose/secure)")
    from consumers.registry import group_names
    from hookstream.acls import role_grants
    from hookstream.settings import Settings

    roles = list(role_grants(Settings.from_env(), group_names()))
    for path in write(Path(sys.argv[1]), roles):
        print(path)


if __name__ == "__main__":
    main()
