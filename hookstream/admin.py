"""Cluster administration: topics, and waiting for a cluster to answer.

Lag and offset tools build on the same AdminClient; they live beside this module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from hookstream.errors import TopicError
from hookstream.kafka_access import ConnectionWatch, denied, explain, watched
from hookstream.settings import KafkaConf, Settings


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication_factor: int | None = None  # None: min(3, brokers)

    def config(self, replication_factor: int) -> dict[str, str]:
        # With three copies, a write needs two of them: one broker may fail without losing acks=all.
        return {"min.insync.replicas": "2"} if replication_factor >= 3 else {}


@dataclass(frozen=True)
class TopicResult:
    name: str
    created: bool
    partitions: int
    replication_factor: int

    def describe(self) -> str:
        verb = "created" if self.created else "found"
        return (
            f"{verb} {self.name} (partitions={self.partitions}, replication_factor={self.replication_factor})"
        )


class Admin(AdminClient):
    """An AdminClient that can say why Kafka refused it (see `hookstream.kafka_access`)."""

    def __init__(self, conf: KafkaConf) -> None:
        self.conf = conf  # for the plain clients some requests need (see offsets.committed_offsets)
        with_logger, self.watch = watched(conf)
        super().__init__(with_logger)


def admin_client(settings: Settings) -> Admin:
    return Admin(settings.kafka_common())


def refusal(
    admin: AdminClient, failure: KafkaException | KafkaError, what: str, needs: tuple[str, str] | None = None
) -> str:
    """One line for a failed admin request (see `kafka_access.explain`)."""
    watch: ConnectionWatch | None = getattr(admin, "watch", None)
    if watch is not None:
        admin.poll(0)  # librdkafka's log lines reach the watch only when the client is polled
    error = failure.args[0] if isinstance(failure, KafkaException) else failure
    return explain(error, what, watch, needs)


def denial(admin: AdminClient, error: KafkaError, operation: str, resource: str) -> str | None:
    """For an authorization failure, the line naming the missing ACL; else None."""
    watch: ConnectionWatch | None = getattr(admin, "watch", None)
    return denied(error, operation, resource, watch.conf if watch is not None else {})


def broker_count(admin: AdminClient, timeout_s: float = 10.0) -> int:
    try:
        return len(admin.list_topics(timeout=timeout_s).brokers)
    except KafkaException as exc:
        raise TopicError(refusal(admin, exc, f"Kafka did not answer within {timeout_s:.0f}s")) from exc


def ensure_topics(admin: AdminClient, specs: list[TopicSpec], timeout_s: float = 30.0) -> list[TopicResult]:
    """Create the topics that do not exist yet; report the ones that do, as they are."""
    brokers = broker_count(admin)
    existing = admin.list_topics(timeout=timeout_s).topics
    to_create: list[NewTopic] = []
    for spec in specs:
        if spec.name in existing:
            continue
        rf = spec.replication_factor or min(3, brokers)
        if rf > brokers:
            raise TopicError(
                f"{spec.name}: replication factor {rf} needs {rf} brokers, the cluster has {brokers}"
            )
        to_create.append(NewTopic(spec.name, spec.partitions, rf, config=spec.config(rf)))
    futures = admin.create_topics(to_create, request_timeout=timeout_s) if to_create else {}
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            # Another process may have created it between our look and our create.
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                line = refusal(admin, exc, f"cannot create topic {name}", ("CREATE", f"topic {name}"))
                raise TopicError(line) from exc
    created = {t.topic for t in to_create}
    return [_describe(admin, spec.name, spec.name in created, timeout_s) for spec in specs]


def _describe(admin: AdminClient, name: str, created: bool, timeout_s: float) -> TopicResult:
    # Metadata for a just-created topic can lag behind the create call by a moment.
    deadline = time.monotonic() + timeout_s
    while True:
        topic = admin.list_topics(topic=name, timeout=timeout_s).topics.get(name)
        line = denial(admin, topic.error, "DESCRIBE", f"topic {name}") if topic and topic.error else None
        if line is not None:
            raise TopicError(line)
        if topic is not None and topic.error is None and topic.partitions:
            replicas = len(next(iter(topic.partitions.values())).replicas)
            return TopicResult(name, created, len(topic.partitions), replicas)
        if time.monotonic() > deadline:
            raise TopicError(f"topic {name} has no metadata after {timeout_s:.0f}s")
        time.sleep(0.2)


def default_topics(settings: Settings, partitions: int = 8) -> list[TopicSpec]:
    return [TopicSpec(settings.topic, partitions), TopicSpec(settings.dlq_topic, partitions)]
