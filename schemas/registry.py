"""The schema registry, through confluent-kafka's own client: one client per process, built from
settings, and the registry's failures turned into Hookstream's errors.

A registry that cannot be reached, or answers with a server error, is `SchemaRegistryUnavailable`:
transient, the caller retries. Only an answer that says "no such thing" is definite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TypeVar

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

# The client speaks httpx2 or httpx, whichever is installed; its transport errors come from there.
from confluent_kafka.schema_registry.common._httpx_compat import httpx
from confluent_kafka.schema_registry.error import SchemaRegistryError

from hookstream.errors import ConfigError, SchemaRegistryUnavailable
from hookstream.settings import Settings
from schemas.codec import CURRENT_VERSION, schema_versions

T = TypeVar("T")

NOT_FOUND = 404
CONFLICT = 409  # a schema the subject's compatibility rule refuses
# Short: a consumer retries in place on its own schedule, and a producer's readiness probe must
# answer before the orchestrator's timeout. The client's own retries cover a blip.
_TIMEOUT_S = 5.0
_RETRIES = 1
_RETRY_WAIT_MS = 200


def client(settings: Settings) -> SchemaRegistryClient:
    """A client for `settings.schema_registry_url` (basic auth when a user is set)."""
    if not settings.schema_registry_url:
        raise ConfigError("HOOKSTREAM_SCHEMA_REGISTRY_URL is not set: the schema registry is off")
    conf: dict[str, object] = {
        "url": settings.schema_registry_url,
        "timeout": _TIMEOUT_S,
        "max.retries": _RETRIES,
        "retries.wait.ms": _RETRY_WAIT_MS,
    }
    if settings.schema_registry_user:
        if not settings.schema_registry_password:
            raise ConfigError(
                "HOOKSTREAM_SCHEMA_REGISTRY_USER is set without a password: "
                "set HOOKSTREAM_SCHEMA_REGISTRY_PASSWORD or HOOKSTREAM_SCHEMA_REGISTRY_PASSWORD_FILE"
            )
        conf["basic.auth.user.info"] = f"{settings.schema_registry_user}:{settings.schema_registry_password}"
    try:
        return SchemaRegistryClient(conf)
    except ValueError as exc:
        raise ConfigError(f"HOOKSTREAM_SCHEMA_REGISTRY_URL: {exc}") from exc


def subject(topic: str) -> str:
    """TopicNameStrategy, as every Confluent serializer and Kafka tool assumes by default."""
    return f"{topic}-value"


@cache
def local_schema_text(version: int = CURRENT_VERSION) -> str:
    """A local envelope schema as registered: compact JSON of the .avsc file."""
    if version not in schema_versions():
        raise ConfigError(f"no envelope schema version {version} in schemas/")
    text = resources.files("schemas").joinpath(f"envelope.v{version}.avsc").read_text()
    return json.dumps(json.loads(text), separators=(",", ":"))


def local_schema(version: int = CURRENT_VERSION) -> Schema:
    return Schema(local_schema_text(version), "AVRO")


@dataclass(frozen=True)
class RegistryAnswer:
    """A definite "no" from the registry (not found, or refused), with its words."""

    status: int
    message: str


def call(what: str, request: Callable[[], T]) -> T | RegistryAnswer:
    """`request()`, with an unreachable or failing registry raised as `SchemaRegistryUnavailable`
    and a definite answer (404, 409, 422) returned for the caller to judge."""
    try:
        return request()
    except SchemaRegistryError as exc:
        if exc.http_status_code in (NOT_FOUND, CONFLICT, 422):
            return RegistryAnswer(exc.http_status_code, str(exc.error_message))
        raise SchemaRegistryUnavailable(
            f"schema registry failed to {what}: HTTP {exc.http_status_code} {exc.error_message}"
        ) from exc
    except httpx.TransportError as exc:  # refused, reset, timeout, DNS, TLS
        raise SchemaRegistryUnavailable(
            f"schema registry unreachable ({what}): {type(exc).__name__}: {exc}"
        ) from exc
