"""Settings: environment variables read once, at startup, into one frozen object.

No other module reads `os.environ`; they receive a `Settings` (or the part they need).
Every secret may also come from a file named by `<NAME>_FILE` (Docker/Kubernetes secrets).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TypeVar

from hookstream.errors import ConfigError

N = TypeVar("N", int, float)

# HOOKSTREAM_LIBRDKAFKA_SASL_MECHANISM=PLAIN reaches librdkafka as sasl.mechanism=PLAIN. The prefix
# is used by nothing else: no Hookstream setting (HOOKSTREAM_KAFKA_HOME, ...) can leak into it.
_KAFKA_PASSTHROUGH_PREFIX = "HOOKSTREAM_LIBRDKAFKA_"


def _read(env: Mapping[str, str], name: str) -> str | None:
    """The value of NAME, or the contents of the file named by NAME_FILE."""
    value = env.get(name)
    file_name = env.get(f"{name}_FILE")
    if value is not None and file_name is not None:
        raise ConfigError(f"{name} and {name}_FILE are both set; set only one of them")
    if file_name is not None:
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={file_name} cannot be read: {exc.strerror}") from exc
    return value


def _secrets(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of secrets; every one is accepted (rotation)."""
    raw = _read(env, name) or ""
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _number(
    env: Mapping[str, str], name: str, default: N, minimum: N, parse: Callable[[str], N], what: str
) -> N:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = parse(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not {what}") from exc
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    return _number(env, name, default, minimum, int, "a whole number")


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    return _number(env, name, default, minimum, float, "a number")


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = env.get(name) or default
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} must be one of: {', '.join(allowed)}")
    return value


def _kafka_passthrough(env: Mapping[str, str]) -> dict[str, str]:
    """HOOKSTREAM_LIBRDKAFKA_SASL_MECHANISM=PLAIN -> {"sasl.mechanism": "PLAIN"}, and so on.

    This is how SASL/TLS settings reach librdkafka without Hookstream knowing each one.
    """
    extra: dict[str, str] = {}
    for name in env:
        if not name.startswith(_KAFKA_PASSTHROUGH_PREFIX):
            continue
        base = name.removesuffix("_FILE")
        prop = base[len(_KAFKA_PASSTHROUGH_PREFIX) :].lower().replace("_", ".")
        value = _read(env, base)
        if prop and value is not None:
            extra[prop] = value
    return extra


def librdkafka_variable(prop: str) -> str:
    """The variable that sets librdkafka property PROP: the inverse of `_kafka_passthrough`."""
    return _KAFKA_PASSTHROUGH_PREFIX + prop.upper().replace(".", "_")


# What confluent-kafka accepts as a client configuration.
KafkaConf = dict[str, str | int | float | bool]


@dataclass(frozen=True)
class ProviderSecrets:
    """Webhook signing secrets per provider; a provider is enabled only when it has one."""

    fastio: tuple[str, ...] = ()
    github: tuple[str, ...] = ()
    stripe: tuple[str, ...] = ()
    standard: tuple[str, ...] = ()

    def enabled(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self) if getattr(self, f.name))

    def __repr__(self) -> str:  # never print a secret, even by accident
        return f"ProviderSecrets(enabled={self.enabled()})"


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap_servers: str = "localhost:9092"
    # Extra librdkafka properties (security.protocol, sasl.*, ssl.*) passed through as given.
    kafka_extra: Mapping[str, str] = field(default_factory=dict, repr=False)
    topic: str = "fastio-events"
    dlq_topic: str = "fastio-dlq"
    data_dir: Path = Path("./data")
    secrets: ProviderSecrets = ProviderSecrets()

    # producer
    max_body_bytes: int = 1024 * 1024
    delivery_timeout_s: float = 2.0
    dedupe_window_s: float = 600.0
    fastio_signature_format: str = "auto"
    timestamp_tolerance_s: int = 300
    partition_key_field: str = "workspace_id"
    # Where gunicorn workers share metric files (prometheus_client's multiprocess mode).
    metrics_multiprocess_dir: Path | None = None

    # consumers
    metrics_port: int = 9100
    retry_max_attempts: int = 5
    retry_max_seconds: float = 60.0
    notifier_rules: Path | None = None
    notify_url: str | None = None
    archive_max_bytes: int = 64 * 1024 * 1024
    archive_max_age_s: float = 60.0
    # group.id = prefix + group name: several deployments (or tests) can share one cluster.
    consumer_group_prefix: str = ""
    consumer_batch_size: int = 500
    consumer_session_timeout_ms: int = 45_000
    # The circuit breaker stops a member when more than ratio x window of the last window
    # records went to the DLQ.
    breaker_window: int = 100
    breaker_ratio: float = 0.5

    # shared stores of the production topology; unset, each falls back to its embedded default
    redis_url: str | None = None  # idempotency state (else SQLite in data_dir)
    redis_password: str | None = field(default=None, repr=False)
    opensearch_url: str | None = None  # the file index (else SQLite in data_dir)
    opensearch_index: str = "hookstream-files"
    opensearch_user: str | None = None
    opensearch_password: str | None = field(default=None, repr=False)
    opensearch_ca_file: Path | None = None
    archive_url: str | None = None  # s3://bucket/prefix (else Avro files in data_dir)
    schema_registry_url: str | None = None  # Confluent wire format (else Hookstream's own framing)
    schema_registry_user: str | None = None
    schema_registry_password: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        rules = env.get("HOOKSTREAM_NOTIFIER_RULES")
        return cls(
            kafka_bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or cls.kafka_bootstrap_servers,
            kafka_extra=_kafka_passthrough(env),
            topic=env.get("HOOKSTREAM_TOPIC") or cls.topic,
            dlq_topic=env.get("HOOKSTREAM_DLQ_TOPIC") or cls.dlq_topic,
            data_dir=Path(env.get("HOOKSTREAM_DATA_DIR") or cls.data_dir),
            secrets=ProviderSecrets(
                fastio=_secrets(env, "FASTIO_WEBHOOK_SECRET"),
                github=_secrets(env, "GITHUB_WEBHOOK_SECRET"),
                stripe=_secrets(env, "STRIPE_WEBHOOK_SECRET"),
                standard=_secrets(env, "STANDARD_WEBHOOK_SECRET"),
            ),
            max_body_bytes=_int(env, "HOOKSTREAM_MAX_BODY_BYTES", cls.max_body_bytes, 1),
            delivery_timeout_s=_float(
                env, "HOOKSTREAM_KAFKA_DELIVERY_TIMEOUT_S", cls.delivery_timeout_s, 0.1
            ),
            dedupe_window_s=_float(env, "HOOKSTREAM_DEDUPE_WINDOW_S", cls.dedupe_window_s),
            fastio_signature_format=_choice(
                env,
                "HOOKSTREAM_FASTIO_SIGNATURE_FORMAT",
                cls.fastio_signature_format,
                ("auto", "hex", "sha256", "timestamped"),
            ),
            timestamp_tolerance_s=_int(env, "HOOKSTREAM_TIMESTAMP_TOLERANCE_S", cls.timestamp_tolerance_s, 1),
            partition_key_field=env.get("HOOKSTREAM_PARTITION_KEY_FIELD") or cls.partition_key_field,
            metrics_multiprocess_dir=Path(env["PROMETHEUS_MULTIPROC_DIR"])
            if env.get("PROMETHEUS_MULTIPROC_DIR")
            else None,
            metrics_port=_int(env, "HOOKSTREAM_METRICS_PORT", cls.metrics_port),
            retry_max_attempts=_int(env, "HOOKSTREAM_RETRY_MAX_ATTEMPTS", cls.retry_max_attempts, 1),
            retry_max_seconds=_float(env, "HOOKSTREAM_RETRY_MAX_SECONDS", cls.retry_max_seconds),
            notifier_rules=Path(rules) if rules else None,
            notify_url=env.get("HOOKSTREAM_NOTIFY_URL") or None,
            archive_max_bytes=_int(env, "HOOKSTREAM_ARCHIVE_MAX_BYTES", cls.archive_max_bytes, 1024),
            archive_max_age_s=_float(env, "HOOKSTREAM_ARCHIVE_MAX_AGE_S", cls.archive_max_age_s, 0.1),
            consumer_group_prefix=env.get("HOOKSTREAM_CONSUMER_GROUP_PREFIX") or "",
            consumer_batch_size=_int(env, "HOOKSTREAM_CONSUMER_BATCH_SIZE", cls.consumer_batch_size, 1),
            consumer_session_timeout_ms=_int(
                env, "HOOKSTREAM_CONSUMER_SESSION_TIMEOUT_MS", cls.consumer_session_timeout_ms, 1000
            ),
            breaker_window=_int(env, "HOOKSTREAM_BREAKER_WINDOW", cls.breaker_window, 1),
            breaker_ratio=_float(env, "HOOKSTREAM_BREAKER_RATIO", cls.breaker_ratio),
            redis_url=env.get("HOOKSTREAM_REDIS_URL") or None,
            redis_password=_read(env, "HOOKSTREAM_REDIS_PASSWORD") or None,
            opensearch_url=env.get("HOOKSTREAM_OPENSEARCH_URL") or None,
            opensearch_index=env.get("HOOKSTREAM_OPENSEARCH_INDEX") or cls.opensearch_index,
            opensearch_user=env.get("HOOKSTREAM_OPENSEARCH_USER") or None,
            opensearch_password=_read(env, "HOOKSTREAM_OPENSEARCH_PASSWORD") or None,
            opensearch_ca_file=Path(env["HOOKSTREAM_OPENSEARCH_CA_FILE"])
            if env.get("HOOKSTREAM_OPENSEARCH_CA_FILE")
            else None,
            archive_url=env.get("HOOKSTREAM_ARCHIVE_URL") or None,
            schema_registry_url=env.get("HOOKSTREAM_SCHEMA_REGISTRY_URL") or None,
            schema_registry_user=env.get("HOOKSTREAM_SCHEMA_REGISTRY_USER") or None,
            schema_registry_password=_read(env, "HOOKSTREAM_SCHEMA_REGISTRY_PASSWORD") or None,
        )

    def kafka_common(self) -> KafkaConf:
        """The librdkafka properties every client of this deployment shares."""
        return {"bootstrap.servers": self.kafka_bootstrap_servers, **self.kafka_extra}
