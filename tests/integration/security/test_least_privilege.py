"""Each role can do its job with its own user and grants, and nothing else (docs/security.md)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from hookstream.acls import TOPICS, role_grants
from hookstream.admin import admin_client
from hookstream.kafka import ProducerConfig
from hookstream.offsets import OffsetsError, committed_offsets
from hookstream.settings import Settings
from tests.fixtures.secure_kafka import SECURE_DLQ, SECURE_TOPIC, SecureKafka
from tests.integration.security.helpers import one_line_error, role_env, run_as


def _produce(settings: Settings, topic: str) -> KafkaError | None:
    """Produce one record as the settings' user; what Kafka said (None: acknowledged)."""
    producer = Producer(ProducerConfig.from_settings(settings, delivery_timeout_ms=15_000).as_librdkafka())
    outcome: list[KafkaError | None] = []
    producer.produce(topic, b"x", b"k", on_delivery=lambda err, _msg: outcome.append(err))
    producer.flush(30)
    assert outcome, "no delivery report within 30 s"
    return outcome[0]


def _first_fetch_error(settings: Settings, topic: str) -> KafkaError | None:
    """Read partition 0 of `topic` by assignment; the first error Kafka returned about the topic.
    (The probe's group id has no ACL: librdkafka's coordinator lookup fails, which is no read.)"""
    consumer = Consumer({**settings.kafka_common(), "group.id": f"probe-{uuid.uuid4().hex[:6]}"})
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            error = msg.error()
            if error is None:
                return None
            if error.code() != KafkaError.GROUP_AUTHORIZATION_FAILED:
                return error
        raise AssertionError(f"reading {topic} neither failed nor returned a record within 30 s")
    finally:
        consumer.close()


@pytest.mark.parametrize("mtls", [False, True], ids=["scram", "mtls"])
def test_the_producer_writes_the_events_topic_but_cannot_read_it(
    secure_kafka: SecureKafka, mtls: bool
) -> None:
    settings = secure_kafka.settings("producer", mtls=mtls)
    assert _produce(settings, SECURE_TOPIC) is None
    error = _first_fetch_error(settings, SECURE_TOPIC)
    assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_group_cannot_write_the_events_topic_but_can_write_the_dlq(secure_kafka: SecureKafka) -> None:
    settings = secure_kafka.settings("indexer")
    refused = _produce(settings, SECURE_TOPIC)
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert _produce(settings, SECURE_DLQ) is None


def test_a_group_cannot_read_another_groups_offsets(secure_kafka: SecureKafka) -> None:
    admin = admin_client(secure_kafka.settings("indexer"))
    partitions = [(SECURE_TOPIC, 0)]
    committed_offsets(admin, "indexer", partitions)  # its own group: allowed (nothing committed yet, or some)
    with pytest.raises(OffsetsError) as refused:
        committed_offsets(admin, "notifier", partitions)
    assert "DESCRIBE on group notifier" in str(refused.value)
    assert "User:indexer" in str(refused.value)


def test_topics_create_needs_create_on_each_topic_and_names_a_missing_grant(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    suffix = uuid.uuid4().hex[:6]
    granted = Settings(topic=f"made-{suffix}", dlq_topic=f"made-dlq-{suffix}")
    secure_kafka.cluster.provision({TOPICS: role_grants(granted, ())[TOPICS]})
    env = role_env(
        secure_kafka, TOPICS, HOOKSTREAM_TOPIC=granted.topic, HOOKSTREAM_DLQ_TOPIC=granted.dlq_topic
    )
    log = tmp_path / "cli.log"

    made = run_as(env, "topics", "create", "--partitions", "2", log=log)
    assert made.returncode == 0, made.stderr
    assert f"created {granted.topic}" in made.stdout and f"created {granted.dlq_topic}" in made.stdout

    again = run_as(env, "topics", "create", "--partitions", "2", log=log)
    assert again.returncode == 0, again.stderr
    assert f"found {granted.topic}" in again.stdout

    stranger = f"not-granted-{suffix}"
    refused = run_as({**env, "HOOKSTREAM_TOPIC": stranger}, "topics", "create", log=log)
    line = one_line_error(refused)
    assert f"CREATE on topic {stranger}" in line and "User:topics" in line
