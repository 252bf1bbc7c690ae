"""`hookstream schemas register|check` against a real registry: the deploy gate."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from hookstream.settings import Settings
from schemas import codec, registry
from schemas.cli import schemas


def run(settings: Settings, *args: str) -> Any:
    env = {"HOOKSTREAM_SCHEMA_REGISTRY_URL": settings.schema_registry_url, "HOOKSTREAM_TOPIC": settings.topic}
    return CliRunner().invoke(schemas, list(args), env=env)


def next_version(folder: Path, **field: Any) -> Path:
    """The package's schemas plus a next version that adds `field`."""
    for version in codec.schema_versions():
        name = f"envelope.v{version}.avsc"
        shutil.copy(Path(str(resources.files("schemas").joinpath(name))), folder / name)
    newest = json.loads((folder / f"envelope.v{codec.CURRENT_VERSION}.avsc").read_text())
    newest["fields"].append(field)
    (folder / f"envelope.v{codec.CURRENT_VERSION + 1}.avsc").write_text(json.dumps(newest))
    return folder


def test_register_puts_every_version_in_order_and_sets_backward(registry_settings: Settings) -> None:
    result = run(registry_settings, "register", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["compatibility"] == "BACKWARD" and report["compatibility_set"] is True
    assert [entry["version"] for entry in report["registered"]] == sorted(codec.schema_versions())
    client = registry.client(registry_settings)
    subject = registry.subject(registry_settings.topic)
    assert client.get_compatibility(subject) == "BACKWARD"
    assert len(client.get_versions(subject)) == len(codec.schema_versions())
    again = json.loads(run(registry_settings, "register", "--json").output)
    assert again["registered"] == report["registered"]  # the same ids: nothing new
    assert again["compatibility_set"] is False


def test_a_rule_already_on_the_subject_is_kept(registry_settings: Settings) -> None:
    client = registry.client(registry_settings)
    subject = registry.subject(registry_settings.topic)
    client.register_schema(subject, registry.local_schema(1))
    client.set_compatibility(subject, "BACKWARD_TRANSITIVE")
    report = json.loads(run(registry_settings, "register", "--json").output)
    assert (report["compatibility"], report["compatibility_set"]) == ("BACKWARD_TRANSITIVE", False)


def test_check_passes_a_compatible_change(registry_settings: Settings, tmp_path: Path) -> None:
    assert run(registry_settings, "register").exit_code == 0
    folder = next_version(tmp_path, name="tenant", type=["null", "string"], default=None)
    result = run(registry_settings, "check", "--schemas", str(folder))
    assert result.exit_code == 0, result.output
    assert "is compatible" in result.output
    assert run(registry_settings, "check").exit_code == 0  # the package's own newest, too


def test_check_refuses_an_incompatible_change_naming_the_field(
    registry_settings: Settings, tmp_path: Path
) -> None:
    assert run(registry_settings, "register").exit_code == 0
    folder = next_version(tmp_path, name="tenant", type="string")
    result = run(registry_settings, "check", "--schemas", str(folder))
    assert result.exit_code == 1
    assert "field `tenant` is new and has no default" in result.output
    report = json.loads(run(registry_settings, "check", "--schemas", str(folder), "--json").output)
    assert report["compatible"] is False and report["compatibility"] == "BACKWARD"
    assert any("tenant" in problem for problem in report["problems"])
    refused = run(registry_settings, "register", "--schemas", str(folder))
    assert refused.exit_code == 1 and "tenant" in str(refused.exception or refused.output)


def test_check_says_when_the_subject_checks_nothing(registry_settings: Settings) -> None:
    client = registry.client(registry_settings)
    client.register_schema(registry.subject(registry_settings.topic), registry.local_schema(1))
    report = json.loads(run(registry_settings, "check", "--json").output)  # Apicurio's global NONE
    assert (report["compatibility"], report["compatible"]) == ("NONE", True)
    assert report["notes"] == [
        f"{registry_settings.topic}-value has no compatibility rule: nothing is checked"
    ]


def test_without_a_registry_url_the_commands_say_what_to_set() -> None:
    result = CliRunner().invoke(schemas, ["check"], env={"HOOKSTREAM_SCHEMA_REGISTRY_URL": ""})
    assert result.exit_code != 0
    assert "HOOKSTREAM_SCHEMA_REGISTRY_URL" in str(result.exception)
