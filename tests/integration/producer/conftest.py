"""The producer app on the session broker, signing secrets for every provider, and a reader."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from confluent_kafka import Consumer, Message, TopicPartition
from flask import Flask
from flask.testing import FlaskClient

from hookstream.settings import ProviderSecrets, Settings
from producer.app import close, create_app

SECRETS = {
    "fastio": "fastio-test-secret",
    "github": "github-test-secret",
    "stripe": "whsec_stripe-test-secret",
    "standard": "whsec_" + base64.b64encode(b"standard-test-key-32-bytes-long!").decode(),
}


@pytest.fixture
def producer_settings(settings: Settings) -> Settings:
    return replace(settings, secrets=ProviderSecrets(**{name: (secret,) for name, secret in SECRETS.items()}))


@pytest.fixture
def app(producer_settings: Settings) -> Iterator[Flask]:
    app = create_app(producer_settings)
    yield app
    close(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def records_in_topic(settings: Settings) -> int:
    """How many records the events topic holds: exact once a 200 was answered, since the
    producer answers only after acks=all, when the high watermark has passed the record."""
    consumer = Consumer({**settings.kafka_common(), "group.id": f"test-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(settings.topic, timeout=10).topics[settings.topic].partitions
        marks = (
            consumer.get_watermark_offsets(TopicPartition(settings.topic, p), timeout=10) for p in partitions
        )
        return sum(high - low for low, high in marks)
    finally:
        consumer.close()


def read_records(settings: Settings, count: int, timeout_s: float = 30.0) -> list[Message]:
    """Every record on the events topic, up to `count` (fewer only when the timeout ends)."""
    consumer = Consumer(
        {**settings.kafka_common(), "group.id": f"test-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    try:
        partitions = consumer.list_topics(settings.topic, timeout=10).topics[settings.topic].partitions
        consumer.assign([TopicPartition(settings.topic, p, 0) for p in partitions])
        records: list[Message] = []
        for _ in range(int(timeout_s)):
            for msg in consumer.consume(num_messages=count, timeout=1.0):
                assert msg.error() is None, msg.error()
                records.append(msg)
            if len(records) >= count:
                break
        return records
    finally:
        consumer.close()
