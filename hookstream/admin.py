"""Cluster administration: topics, and waiting for a cluster to answer.

Lag and offset tools build on the same AdminClient; they live beside this module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from hookstream.errors import TopicError
from hookstream.settings import Settings


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


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient(settings.kafka_common())


def broker_count(admin: AdminClient, timeout_s: float = 10.0) -> int:
    try:
        return len(admin.list_topics(timeout=timeout_s).brokers)
    except KafkaException as exc:
        raise TopicError(f"Kafka did not answer within {timeout_s:.0f}s: {exc}") from exc


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
                raise TopicError(f"cannot create topic {name}: {exc.args[0].str()}") from exc
    created = {t.topic for t in to_create}
    return [_describe(admin, spec.name, spec.name in created, timeout_s) for spec in specs]


def _describe(admin: AdminClient, name: str, created: bool, timeout_s: float) -> TopicResult:
    # Metadata for a just-created topic can lag behind the create call by a moment.
    deadline = time.monotonic() + timeout_s
    while True:
        topic = admin.list_topics(topic=name, timeout=timeout_s).topics.get(name)
        if topic is not None and topic.error is None and topic.partitions:
            replicas = len(next(iter(topic.partitions.values())).replicas)
            return TopicResult(name, created, len(topic.partitions), replicas)
        if time.monotonic() > deadline:
            raise TopicError(f"topic {name} has no metadata after {timeout_s:.0f}s")
        time.sleep(0.2)


def default_topics(settings: Settings, partitions: int = 8) -> list[TopicSpec]:
    return [TopicSpec(settings.topic, partitions), TopicSpec(settings.dlq_topic, partitions)]
