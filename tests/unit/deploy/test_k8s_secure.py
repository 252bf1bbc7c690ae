"""deploy/k8s-secure offline: the overlay built with `kubectl kustomize` (or kustomize) and
checked against Kubernetes' schemas, each Deployment signing in as its own role
with its own Secret; the Secrets' shape and the ConfigMap's protocol settings."""

from __future__ import annotations

import subprocess
from typing import Any

import kubernetes_validate
import pytest
import yaml

from consumers.registry import group_names
from hookstream.acls import role_grants
from hookstream.settings import Settings
from tests.unit.deploy.promql_names import ROOT
from tests.unit.deploy.tools import kustomize_command

OVERLAY = ROOT / "deploy/k8s-secure"
KUBERNETES_VERSION = "1.30"
DEPLOYMENTS = {"producer": "producer", **{g: "consumer" for g in group_names()}}  # role -> container

Doc = dict[str, Any]


def _docs(name: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all((OVERLAY / name).read_text()) if doc]


@pytest.fixture(scope="module")
def built() -> list[Doc]:
    done = subprocess.run([*kustomize_command(), str(OVERLAY)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def test_every_secret_shape_is_valid_and_one_per_role() -> None:
    secrets = _docs("secret.example.yaml")
    for doc in secrets:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert set(doc["stringData"]) == {"password", "ca.crt"}
    names = {doc["metadata"]["name"] for doc in secrets}
    assert names == {f"hookstream-kafka-{role}" for role in role_grants(Settings(), group_names())}


def test_the_overlay_builds_into_valid_manifests(built: list[Doc]) -> None:
    for doc in built:
        if doc["kind"] != "ScaledObject":  # KEDA's CRD: checked by test_k8s.py
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_configmap_holds_the_protocol_settings_and_no_secret(built: list[Doc]) -> None:
    [config] = [d for d in built if d["kind"] == "ConfigMap"]
    data = config["data"]
    assert data["HOOKSTREAM_LIBRDKAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["HOOKSTREAM_LIBRDKAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert data["HOOKSTREAM_LIBRDKAFKA_SSL_CA_LOCATION"] == "/run/secrets/kafka/ca.crt"
    assert not [key for key in data if "PASSWORD" in key and not key.endswith("_FILE")]


@pytest.mark.parametrize("role", sorted(DEPLOYMENTS))
def test_each_deployment_signs_in_as_its_own_role(built: list[Doc], role: str) -> None:
    [deployment] = [
        d for d in built if d["kind"] == "Deployment" and d["metadata"]["name"] == f"hookstream-{role}"
    ]
    pod = deployment["spec"]["template"]["spec"]
    [container] = [c for c in pod["containers"] if c["name"] == DEPLOYMENTS[role]]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HOOKSTREAM_LIBRDKAFKA_SASL_USERNAME"] == role
    assert env["HOOKSTREAM_LIBRDKAFKA_SASL_PASSWORD_FILE"] == "/run/secrets/kafka/password"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["kafka-credentials"] == "/run/secrets/kafka"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["kafka-credentials"]["secret"]["secretName"] == f"hookstream-kafka-{role}"
    # the base's own settings survive the patch
    assert any(ref.get("configMapRef", {}).get("name") == "hookstream-config" for ref in container["envFrom"])
