"""Fixtures shared by every test: a real Kafka cluster and fresh topics on it.

Where the broker comes from, in order: `KAFKA_BOOTSTRAP_SERVERS` if set; else testcontainers'
`KafkaContainer` (Confluent's `cp-kafka` image) if a Docker engine answers; else the local broker
from the Maven Central jars (`hookstream_dev.kafka`) on free ports in a temporary home.
A broker that cannot start is an error, never a skip: integration tests always run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from hookstream.admin import TopicSpec, admin_client, ensure_topics
from hookstream.settings import Settings
from hookstream_dev.kafka import LocalCluster
from hookstream_dev.process import free_port_block

# One module per server in tests/fixtures/ (Redis, OpenSearch, s3proxy, the registry, nginx).
pytest_plugins = sorted(
    f"tests.fixtures.{path.stem}" for path in (Path(__file__).parent / "fixtures").glob("[a-z]*.py")
)


def _docker_answers() -> bool:
    try:
        import docker  # installed with testcontainers

        docker.from_env(timeout=2).ping()
        return True
    except Exception:  # no engine, no socket, no permission: all mean "not here"
        return False


@contextmanager
def _kafka_container() -> Iterator[str]:
    """testcontainers' own KafkaContainer, one KRaft node on a mapped port. It drives Confluent's
    cp-kafka image; 7.9 is Apache Kafka 3.9, which speaks everything Hookstream's clients use."""
    from testcontainers.community.kafka import KafkaContainer

    container = KafkaContainer("confluentinc/cp-kafka:7.9.0").with_kraft()
    container.with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false").start(timeout=120)  # 30 s is short on CI
    try:
        yield container.get_bootstrap_server()
    finally:
        container.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap servers of a real Kafka cluster for the whole test session."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        yield given
        return
    if _docker_answers():
        with _kafka_container() as bootstrap:
            yield bootstrap
        return
    cluster = LocalCluster(tmp_path_factory.mktemp("kafka"), nodes=1, base_port=free_port_block(2))
    cluster.start()
    try:
        yield cluster.bootstrap_servers
    finally:
        cluster.stop()


@pytest.fixture
def settings(kafka_bootstrap: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    """Settings pointing at the session cluster, with topics of their own (4 partitions)."""
    suffix = uuid.uuid4().hex[:10]
    base = replace(
        Settings(),
        kafka_bootstrap_servers=kafka_bootstrap,
        topic=f"events-{suffix}",
        dlq_topic=f"dlq-{suffix}",
        data_dir=tmp_path / "data",
    )
    ensure_topics(admin_client(base), [TopicSpec(base.topic, 4), TopicSpec(base.dlq_topic, 4)])
    return base
