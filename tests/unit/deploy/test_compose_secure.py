"""docker-compose.secure.yml, checked offline like docker-compose.yml: the Compose schema, then
what the secured stack needs: no plaintext listener, each process as its own role's user with
its password from a secret file, and the files the override mounts made by secure_files."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from consumers.registry import group_names
from hookstream.acls import role_grants
from hookstream.settings import Settings
from hookstream_dev import secure_files
from tests.unit.deploy.promql_names import ROOT

BASE = ROOT / "docker-compose.yml"
OVERRIDE = ROOT / "docker-compose.secure.yml"
APP_ROLES = {"topics": "topics", "producer": "producer", **{g: g for g in group_names()}}


@pytest.fixture(scope="module")
def override() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(OVERRIDE.read_text())
    return loaded


def test_matches_the_compose_specification_schema(override: dict[str, Any]) -> None:
    vendored = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(vendored.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [e.message for e in validator.iter_errors(override)] == []


def test_overrides_only_services_the_base_file_has(override: dict[str, Any]) -> None:
    base = yaml.safe_load(BASE.read_text())
    assert set(override["services"]) - set(base["services"]) == {"kafka-setup"}
    assert set(APP_ROLES) <= set(override["services"])


def test_kafka_has_no_plaintext_listener_and_denies_without_an_acl(override: dict[str, Any]) -> None:
    env = override["services"]["kafka"]["environment"]
    protocols = dict(pair.split(":") for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert "PLAINTEXT" not in protocols.values() and "SASL_PLAINTEXT" not in protocols.values()
    listeners = {item.split("://")[0] for item in env["KAFKA_LISTENERS"].split(",")}
    assert listeners == set(protocols)
    assert "CONTROLLER://localhost:" in env["KAFKA_LISTENERS"]  # the quorum stays inside the container
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")


@pytest.mark.parametrize("service", sorted(APP_ROLES))
def test_each_process_signs_in_as_its_own_role(override: dict[str, Any], service: str) -> None:
    spec = override["services"][service]
    env = spec["environment"]
    role = APP_ROLES[service]
    assert env["HOOKSTREAM_LIBRDKAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["HOOKSTREAM_LIBRDKAFKA_SASL_USERNAME"] == role
    assert "HOOKSTREAM_LIBRDKAFKA_SASL_PASSWORD" not in env  # only ever the _FILE form
    secret = f"kafka_{role}_password"
    assert env["HOOKSTREAM_LIBRDKAFKA_SASL_PASSWORD_FILE"] == f"/run/secrets/{secret}"
    assert spec["secrets"] == ["kafka_ca", secret]  # its own password and no one else's
    assert override["secrets"][secret]["file"] == f"./deploy/compose/secure/passwords/{role}"


def test_every_role_has_a_user_made_by_kafka_setup(override: dict[str, Any]) -> None:
    roles = set(role_grants(Settings(), group_names()))
    assert set(APP_ROLES.values()) <= roles
    assert override["services"]["kafka-setup"]["command"][:2] == ["acls", "apply"]


def test_secure_files_makes_every_file_the_override_mounts(override: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "deploy/compose/secure"
    secure_files.write(folder, sorted(set(role_grants(Settings(), group_names()))))
    for name, secret in override["secrets"].items():
        assert (tmp_path / secret["file"]).is_file(), name
    mounted = [v.split(":")[0] for s in override["services"].values() for v in s.get("volumes", [])]
    for source in mounted:
        assert (tmp_path / source).is_dir(), source
    kafka_env = override["services"]["kafka"]["environment"]
    for key in ("KAFKA_SSL_KEYSTORE_LOCATION", "KAFKA_SSL_TRUSTSTORE_LOCATION"):
        assert (folder / "tls" / Path(kafka_env[key]).name).is_file(), key
