"""deploy/k8s offline: built-in kinds against Kubernetes' own schemas (kubernetes-validate ships
them, strict: unknown fields fail), KEDA's ScaledObject structurally (its CRD schema is not
shipped), and the wiring between the manifests."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from consumers.registry import group_names
from hookstream.admin import default_topics
from tests.unit.deploy.promql_names import ROOT

K8S = ROOT / "deploy/k8s"
KUBERNETES_VERSION = "1.30"
PARTITIONS = inspect.signature(default_topics).parameters["partitions"].default
BUILT_IN = {
    "Namespace",
    "ConfigMap",
    "Secret",
    "Deployment",
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
}

Doc = dict[str, Any]


def _docs(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


MANIFESTS = {
    path.name: _docs(path) for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
}
ALL = [doc for docs in MANIFESTS.values() for doc in docs]


def _one(kind: str, name: str) -> Doc:
    [found] = [d for d in ALL if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def _config() -> dict[str, str]:
    data: dict[str, str] = _one("ConfigMap", "hookstream-config")["data"]
    return data


def _consumer_deployments() -> dict[str, Doc]:
    return {
        d["metadata"]["labels"]["hookstream.io/group"]: d
        for d in ALL
        if d["kind"] == "Deployment"
        and d["metadata"]["labels"].get("app.kubernetes.io/component") == "consumer"
    }


@pytest.mark.parametrize(
    "doc", [d for d in ALL if d["kind"] in BUILT_IN], ids=lambda d: f"{d['kind']}/{d['metadata']['name']}"
)
def test_built_in_kinds_match_the_kubernetes_schema(doc: Doc) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    broken = yaml.safe_load(yaml.safe_dump(_one("Deployment", "hookstream-producer")))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_kind_is_known() -> None:
    assert {d["kind"] for d in ALL} <= BUILT_IN | {"ScaledObject"}


def test_kustomization_lists_every_manifest_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert set(kustomization["resources"]) == set(MANIFESTS) - {"secret.example.yaml"}


def _containers() -> list[tuple[str, Doc, Doc]]:
    return [
        (d["metadata"]["name"], d["spec"]["template"]["spec"], c)
        for d in ALL
        if d["kind"] == "Deployment"
        for c in d["spec"]["template"]["spec"]["containers"]
    ]


def test_every_container_has_probes_resources_and_runs_locked_down() -> None:
    for name, pod, container in _containers():
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        resources = container["resources"]
        assert {"cpu", "memory"} <= resources["requests"].keys() and {"cpu", "memory"} <= resources[
            "limits"
        ].keys()
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert {"configMapRef": {"name": "hookstream-config"}} in container["envFrom"], name


def test_file_secrets_point_into_a_mounted_secret() -> None:
    secret_names = {d["metadata"]["name"] for d in ALL if d["kind"] == "Secret"}
    for name, pod, container in _containers():
        secret_mounts = {
            m["mountPath"]: v["secret"]["secretName"]
            for m in container.get("volumeMounts", [])
            for v in pod["volumes"]
            if v["name"] == m["name"] and "secret" in v
        }
        for env in container.get("env", []):
            if env["name"].endswith("_FILE"):
                directory, key = env["value"].rsplit("/", 1)
                secret_name = secret_mounts[directory]
                assert secret_name in secret_names, name
                assert key in _one("Secret", secret_name)["stringData"], f"{name}: no key {key}"
    producer_env = {
        e["name"]
        for e in _one("Deployment", "hookstream-producer")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert "FASTIO_WEBHOOK_SECRET_FILE" in producer_env
    assert not any("SECRET" in key and not key.endswith("_FILE") for key in _config())


def test_producer_service_hpa_and_pdb_select_the_producer() -> None:
    deployment = _one("Deployment", "hookstream-producer")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert _one("Service", "hookstream-producer")["spec"]["selector"].items() <= pod_labels.items()
    assert (
        _one("PodDisruptionBudget", "hookstream-producer")["spec"]["selector"]["matchLabels"].items()
        <= pod_labels.items()
    )
    hpa = _one("HorizontalPodAutoscaler", "hookstream-producer")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "hookstream-producer",
    }
    assert hpa["minReplicas"] >= 2
    port = deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]
    assert _one("Service", "hookstream-producer")["spec"]["ports"][0]["targetPort"] == port["name"]


def test_one_deployment_per_registered_group_with_a_scaled_object_on_lag() -> None:
    deployments = _consumer_deployments()
    assert set(deployments) == {"indexer", "notifier", "archiver"}
    config = _config()
    for group, deployment in deployments.items():
        assert group in group_names()
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["consume", group]
        assert deployment["spec"]["replicas"] <= PARTITIONS
        scaled = _one("ScaledObject", deployment["metadata"]["name"])
        assert scaled["apiVersion"] == "keda.sh/v1alpha1"
        assert scaled["metadata"]["namespace"] == deployment["metadata"]["namespace"]
        spec = scaled["spec"]
        assert spec["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= PARTITIONS
        [trigger] = spec["triggers"]
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        assert meta["consumerGroup"] == group
        assert meta["topic"] == config["HOOKSTREAM_TOPIC"]
        assert meta["bootstrapServers"] == config["KAFKA_BOOTSTRAP_SERVERS"]
        assert int(meta["lagThreshold"]) > 0 and meta["allowIdleConsumers"] == "false"
        assert set(spec) <= {
            "scaleTargetRef",
            "minReplicaCount",
            "maxReplicaCount",
            "pollingInterval",
            "cooldownPeriod",
            "triggers",
            "advanced",
            "fallback",
            "idleReplicaCount",
        }
        metrics_port = container["ports"][0]
        assert str(metrics_port["containerPort"]) == config["HOOKSTREAM_METRICS_PORT"]
        assert (
            deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"]
            == config["HOOKSTREAM_METRICS_PORT"]
        )


def test_consumer_groups_differ_only_in_their_name() -> None:
    def normalised(group: str) -> str:
        deployment = _consumer_deployments()[group]
        scaled = _one("ScaledObject", deployment["metadata"]["name"])
        return yaml.safe_dump([deployment, scaled]).replace(group, "GROUP")

    assert normalised("indexer") == normalised("notifier") == normalised("archiver")


def test_members_spread_over_nodes_and_keep_no_state_of_their_own() -> None:
    config = _config()
    for name in ("HOOKSTREAM_REDIS_URL", "HOOKSTREAM_OPENSEARCH_URL", "HOOKSTREAM_ARCHIVE_URL",
                 "HOOKSTREAM_SCHEMA_REGISTRY_URL"):  # fmt: skip
        assert config[name], name  # every state in a shared system
    for group, deployment in _consumer_deployments().items():
        pod = deployment["spec"]["template"]["spec"]
        [spread] = pod["topologySpreadConstraints"]
        assert spread["topologyKey"] == "kubernetes.io/hostname"
        assert spread["labelSelector"]["matchLabels"]["hookstream.io/group"] == group
        assert _one("ScaledObject", deployment["metadata"]["name"])["spec"]["minReplicaCount"] >= 2
        # The only volumes are Secret files and scratch space, nothing persistent.
        assert all("secret" in v or "emptyDir" in v for v in pod["volumes"]), group
