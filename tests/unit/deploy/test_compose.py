"""docker-compose.yml and the image, checked offline.

`docker compose config` needs Compose v2, which no package here provides (Debian's
docker-compose 1.29 predates the top-level `name`), so the file is validated against the
Compose Specification's JSON schema (vendored by check-jsonschema), then checked for what the
stack needs: images, build, start order, health checks, files it mounts.
"""

from __future__ import annotations

import http.server
import importlib.resources
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from consumers.registry import group_names
from hookstream_dev.kafka import KAFKA_VERSION
from tests.unit.deploy.promql_names import ROOT

COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy/Dockerfile"
CONSUMERS = ("indexer", "notifier", "archiver")
APP_SERVICES = ("topics", "schemas", "producer", *CONSUMERS)
ONE_SHOT = ("topics", "schemas")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


def test_matches_the_compose_specification_schema(compose: dict[str, Any]) -> None:
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(vendored.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [e.message for e in validator.iter_errors(compose)] == []
    # The schema is strict enough to catch a typo in a service key.
    broken = {
        **compose,
        "services": {**compose["services"], "kafka": {**compose["services"]["kafka"], "imgae": "x"}},
    }
    assert not validator.is_valid(broken)


def test_services_and_images(compose: dict[str, Any]) -> None:
    services = compose["services"]
    stores = {"redis", "registry", "opensearch", "s3"}
    assert set(services) == {"kafka", *stores, *APP_SERVICES, "gateway", "prometheus", "grafana"}
    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"  # same as the local broker
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    for name in APP_SERVICES:
        build = services[name]["build"]
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        assert services[name]["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    for name in (*stores, "gateway", "prometheus", "grafana"):
        image = services[name]["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name} image must be pinned"


def test_start_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["topics"]["command"][:2] == ["topics", "create"]
    assert services["topics"]["restart"] == "no"
    assert services["topics"]["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    for name in ("producer", *CONSUMERS):
        assert services[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
    for name in ("producer", *CONSUMERS):
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_shared_state_is_redis_with_aof_on_a_volume(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = redis["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert (
        redis["volumes"][0].split(":")[1] == "/data"
        and redis["volumes"][0].split(":")[0] in compose["volumes"]
    )
    for name in APP_SERVICES:
        assert compose["services"][name]["environment"]["HOOKSTREAM_REDIS_URL"] == "redis://redis:6379/0"


def test_schemas_are_registered_before_the_producer_writes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["schemas"]["command"] == ["schemas", "register"]
    assert services["schemas"]["restart"] == "no"
    assert services["schemas"]["depends_on"] == {"registry": {"condition": "service_healthy"}}
    assert services["producer"]["depends_on"]["schemas"]["condition"] == "service_completed_successfully"
    for name in APP_SERVICES:
        url = services[name]["environment"]["HOOKSTREAM_SCHEMA_REGISTRY_URL"]
        assert url == "http://registry:8080/apis/ccompat/v7"


def test_consumers_run_the_registered_groups(compose: dict[str, Any]) -> None:
    for name in CONSUMERS:
        service = compose["services"][name]
        assert service["command"] == ["consume", name]
        assert name in group_names()
        assert service["healthcheck"]["test"][-1] == "/usr/local/bin/hookstream-healthcheck"
        assert service["environment"]["HOOKSTREAM_HEALTHCHECK_URL"].startswith("http://127.0.0.1:9100/")
        assert "FASTIO_WEBHOOK_SECRET_FILE" not in service["environment"]  # only the producer signs


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name in ONE_SHOT:
            continue
        check = service.get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"


def test_secret_is_a_file_and_mounted_files_exist(compose: dict[str, Any]) -> None:
    producer = compose["services"]["producer"]
    assert producer["environment"]["FASTIO_WEBHOOK_SECRET_FILE"] == "/run/secrets/fastio_webhook_secret"
    assert producer["secrets"] == ["fastio_webhook_secret"]
    assert (ROOT / compose["secrets"]["fastio_webhook_secret"]["file"]).is_file()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"


def _instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_slim_nonroot_healthcheck_and_signal_handling() -> None:
    steps = _instructions()
    froms = [arg for op, arg in steps if op == "FROM"]
    assert all(arg.split()[0].endswith("-slim") for arg in froms)
    final = steps[max(i for i, (op, _) in enumerate(steps) if op == "FROM") :]
    users = [arg for op, arg in final if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}
    assert any(op == "HEALTHCHECK" for op, _ in final)
    entrypoint = json.loads(next(arg for op, arg in final if op == "ENTRYPOINT"))  # exec form
    assert entrypoint[:2] == ["/usr/bin/tini", "--"], "PID 1 must forward SIGTERM and reap children"
    command = json.loads(next(arg for op, arg in final if op == "CMD"))
    assert command[0] == "producer"
    for op, arg in steps:
        if op == "COPY" and not arg.startswith("--from"):
            for source in arg.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY of missing {source}"


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[str]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


@pytest.mark.parametrize(("path", "expected"), [("/healthz", 0), ("/down", 1)])
def test_image_healthcheck_script(health_server: str, path: str, expected: int) -> None:
    env = {"HOOKSTREAM_HEALTHCHECK_URL": health_server + path}
    done = subprocess.run([sys.executable, str(ROOT / "deploy/healthcheck.py")], env=env, timeout=30)
    assert done.returncode == expected


def test_image_healthcheck_script_on_a_closed_port(tmp_path: Path) -> None:
    env = {"HOOKSTREAM_HEALTHCHECK_URL": "http://127.0.0.1:1/healthz"}
    done = subprocess.run([sys.executable, str(ROOT / "deploy/healthcheck.py")], env=env, timeout=30)
    assert done.returncode == 1


def test_the_indexer_writes_to_opensearch_once_it_is_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["indexer"]["environment"]["HOOKSTREAM_OPENSEARCH_URL"] == "http://opensearch:9200"
    assert services["indexer"]["depends_on"]["opensearch"]["condition"] == "service_healthy"
    assert "/usr/share/opensearch/data" in services["opensearch"]["volumes"][0]


def test_the_shared_topology_two_producers_behind_the_gateway_two_members_per_group(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    producer, gateway = services["producer"], services["gateway"]
    assert producer["deploy"]["replicas"] == 2
    assert "ports" not in producer  # reached through the gateway only (two replicas share no port)
    assert gateway["ports"] == ["8000:8080"]
    source, target, _ = gateway["volumes"][0].split(":")
    assert (ROOT / source).resolve() == ROOT / "deploy/nginx/hookstream.conf"
    assert target == "/etc/nginx/conf.d/default.conf"
    assert gateway["depends_on"]["producer"]["condition"] == "service_healthy"
    for name in CONSUMERS:
        assert services[name]["deploy"]["replicas"] == 2
        # No volume of its own: a member's correctness rests on the shared stores alone.
        assert not services[name].get("volumes"), name
    for name, store in (("indexer", "opensearch"), ("archiver", "s3")):
        assert services[name]["depends_on"][store]["condition"] == "service_healthy"


def test_prometheus_scrapes_every_replica() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["hookstream-producer"]["dns_sd_configs"] == [
        {"names": ["producer"], "type": "A", "port": 8000}
    ]
    names = jobs["hookstream-consumers"]["dns_sd_configs"][0]["names"]
    assert sorted(names) == sorted(CONSUMERS)
