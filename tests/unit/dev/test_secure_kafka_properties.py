"""The secured local broker's configuration, without starting it: no plaintext listener, an
authorizer that denies by default, and a home that stays what it was first made."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from hookstream_dev.errors import LocalKafkaError
from hookstream_dev.kafka import LocalCluster


def _properties(cluster: LocalCluster, node: int = 1) -> dict[str, str]:
    cluster.node_dir(node).mkdir(parents=True)
    cluster._write_properties(node)
    text = (cluster.node_dir(node) / "server.properties").read_text()
    return dict(line.split("=", 1) for line in text.splitlines() if line)


def test_no_plaintext_listener_and_deny_by_default(tmp_path: Path) -> None:
    props = _properties(LocalCluster(tmp_path, nodes=1, base_port=20000, secure=True))
    protocols = dict(pair.split(":") for pair in props["listener.security.protocol.map"].split(","))
    assert set(protocols.values()) == {"SASL_SSL", "SSL"}
    assert props["listeners"] == (
        "SASL_SSL://localhost:20000,MTLS://localhost:20002,CONTROLLER://localhost:20001"
    )
    assert props["listener.name.controller.ssl.client.auth"] == "required"
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert props["super.users"] == "User:broker;User:admin"


def test_the_broker_certificate_names_localhost_and_keys_are_private(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path, nodes=1, base_port=20000, secure=True)
    props = _properties(cluster)
    keystore = Path(props["ssl.keystore.location"])
    cert = x509.load_pem_x509_certificate(keystore.with_name("broker.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    for secret in [keystore, *tmp_path.glob("tls/*.key")]:
        assert secret.stat().st_mode & 0o077 == 0, secret
    assert cluster.password_file("producer").stat().st_mode & 0o077 == 0


def test_a_plaintext_home_is_not_reused_as_a_secured_one(tmp_path: Path) -> None:
    (tmp_path / "cluster.json").write_text('{"nodes": 1, "base_port": 9092, "cluster_id": "x"}')
    with pytest.raises(LocalKafkaError, match="plaintext cluster"):
        LocalCluster(tmp_path, secure=True)
    assert not LocalCluster(tmp_path).secure
    with pytest.raises(LocalKafkaError, match="--secure"):
        LocalCluster(tmp_path).client_env("producer")


def test_the_plain_broker_keeps_its_plaintext_listener(tmp_path: Path) -> None:
    props = _properties(LocalCluster(tmp_path, nodes=1, base_port=20000))
    assert props["listeners"] == "PLAINTEXT://localhost:20000,CONTROLLER://localhost:20001"
    assert "authorizer.class.name" not in props
