"""The topic's subject in the registry: register the local envelope schemas, and check the
newest against the subject's compatibility rule (a deploy gate).

`local` is a folder of `envelope.v*.avsc`; by default this package's, so a gate can also check a
checkout's schemas before they ship.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from hookstream.errors import ConfigError, SchemaError
from hookstream.settings import Settings
from schemas import compat, registry

DEFAULT_RULE = "BACKWARD"
NO_RULE = "NONE"


def local_schemas(folder: Path | None = None) -> dict[int, str]:
    """Every `envelope.v<N>.avsc` in `folder` (default: the package's), compact JSON by version."""
    root = folder or Path(str(resources.files("schemas")))
    found: dict[int, str] = {}
    for path in root.glob("envelope.v*.avsc"):
        number = path.name.removeprefix("envelope.v").removesuffix(".avsc")
        if not number.isdigit():
            continue
        try:
            found[int(number)] = json.dumps(json.loads(path.read_text()), separators=(",", ":"))
        except ValueError as exc:
            raise ConfigError(f"{path} is not JSON: {exc}") from exc
    if not found:
        raise ConfigError(f"no envelope.v*.avsc in {root}: pass --schemas with the folder that holds them")
    return dict(sorted(found.items()))


@dataclass(frozen=True)
class Registered:
    version: int  # the local envelope version
    schema_id: int


@dataclass(frozen=True)
class RegisterResult:
    subject: str
    compatibility: str
    compatibility_set: bool  # set by this run (it was not set on the subject before)
    registered: list[Registered]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CheckResult:
    subject: str
    version: int  # the newest local envelope version, the one checked
    compatibility: str
    compatible: bool
    against: list[int] = field(default_factory=list)  # registry versions it was checked against
    problems: list[str] = field(default_factory=list)  # why not compatible
    notes: list[str] = field(default_factory=list)  # worth knowing even when compatible

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def register(settings: Settings, folder: Path | None = None) -> RegisterResult:
    """Register every local version in order; set the subject's rule to BACKWARD unless the
    subject has one of its own. A version the rule refuses is a `SchemaError` naming why."""
    client = registry.client(settings)
    name = registry.subject(settings.topic)
    schemas = local_schemas(folder)
    done: list[Registered] = []
    rule, was_set = None, False
    for version, text in schemas.items():
        done.append(Registered(version, _register(client, name, version, text)))
        if rule is None:  # the subject exists now, so its rule can be read and set
            rule, was_set = _ensure_rule(client, name)
    return RegisterResult(name, rule or DEFAULT_RULE, was_set, done)


def _register(client: SchemaRegistryClient, name: str, version: int, text: str) -> int:
    schema = Schema(text, "AVRO")
    what = f"register envelope v{version} under {name}"
    answer = registry.call(what, lambda: client.register_schema(name, schema))
    if isinstance(answer, registry.RegistryAnswer):
        raise SchemaError(f"the registry refused envelope v{version} under {name}: {answer.message}")
    return answer


def _ensure_rule(client: SchemaRegistryClient, name: str) -> tuple[str, bool]:
    """The subject's rule, set to BACKWARD first when it has none of its own. A subject showing
    the global level has none: Apicurio answers with the global level (NONE by default) where
    Confluent answers 404."""
    own = _compatibility(client, name)
    if own is not None and own != _compatibility(client, None):
        return own, False
    registry.call(f"set {name}'s compatibility", lambda: client.set_compatibility(name, DEFAULT_RULE))
    return DEFAULT_RULE, True


def _compatibility(client: SchemaRegistryClient, name: str | None) -> str | None:
    what = f"read {name or 'the global'} compatibility"
    answer = registry.call(what, lambda: client.get_compatibility(name))
    return None if isinstance(answer, registry.RegistryAnswer) else str(answer).upper()


def check(settings: Settings, folder: Path | None = None) -> CheckResult:
    """The newest local schema against the subject, under the subject's rule. The registry
    judges; the problems name the fields it would refuse."""
    client = registry.client(settings)
    name = registry.subject(settings.topic)
    version, text = list(local_schemas(folder).items())[-1]
    versions = registry.call(f"list {name}'s versions", lambda: client.get_versions(name))
    if isinstance(versions, registry.RegistryAnswer):  # nothing registered: anything goes
        return CheckResult(
            name, version, DEFAULT_RULE, True, notes=[f"nothing is registered under {name} yet"]
        )
    rule = _compatibility(client, name) or _compatibility(client, None) or NO_RULE
    if rule == NO_RULE:  # the registry would take anything: the gate is worth nothing, say so
        note = f"{name} has no compatibility rule: nothing is checked"
        return CheckResult(name, version, rule, True, notes=[note])
    transitive = rule.endswith("_TRANSITIVE")
    against = sorted(versions) if transitive else [max(versions)]
    candidate = Schema(text, "AVRO")
    verdict = registry.call(
        f"test envelope v{version} against {name}",
        lambda: (
            client.test_compatibility_all_versions(name, candidate)
            if transitive
            else client.test_compatibility(name, candidate)
        ),
    )
    if isinstance(verdict, registry.RegistryAnswer):
        return CheckResult(name, version, rule, False, against, [verdict.message])
    if verdict:
        return CheckResult(name, version, rule, True, against)
    problems: list[str] = []
    new = json.loads(text)
    for number in against:
        old = registry.call(f"read {name} version {number}", partial(client.get_version, name, number))
        if isinstance(old, registry.RegistryAnswer):
            continue
        found = compat.for_rule(rule, new, json.loads(old.schema.schema_str or "{}"))
        problems += [f"against {name} version {number}: {p}" for p in found]
    problems = problems or [f"the registry refuses it under {rule}, and no field explains why here"]
    return CheckResult(name, version, rule, False, against, problems)
