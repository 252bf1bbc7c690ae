"""Interop: what the producer writes with a registry is read by a reader we did not write,
confluent-kafka's own `AvroDeserializer` with a `SchemaRegistryClient`, and no Hookstream code
on the reading side."""

from __future__ import annotations

import uuid
from dataclasses import replace

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from hookstream.settings import ProviderSecrets, Settings
from producer.app import close, create_app
from producer.providers import PROVIDERS, sign
from producer.samples import sample_event
from tests.integration.producer.conftest import SECRETS


def test_a_foreign_reader_decodes_what_the_producer_wrote(registry_settings: Settings) -> None:
    settings = replace(
        registry_settings, secrets=ProviderSecrets(**{name: (secret,) for name, secret in SECRETS.items()})
    )
    app = create_app(settings)
    client = app.test_client()
    try:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and "schema id" in ready.json["detail"], ready.json  # type: ignore[index]
        sent: dict[str, tuple[str, bytes]] = {}
        for provider in PROVIDERS:
            body = sample_event(provider)
            answer = client.post(
                f"/webhooks/{provider}", data=body, headers=sign(provider, body, SECRETS[provider])
            )
            assert answer.status_code == 200, answer.json
            sent[answer.json["event_id"]] = (provider, body)  # type: ignore[index]
    finally:
        close(app)

    # The reading side: confluent-kafka and the registry's URL, nothing else.
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": registry_settings.schema_registry_url}))
    consumer = Consumer(
        {"bootstrap.servers": registry_settings.kafka_bootstrap_servers, "group.id": uuid.uuid4().hex}
    )
    topic = registry_settings.topic
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        read: dict[str, dict] = {}  # type: ignore[type-arg]
        for _ in range(60):
            for msg in consumer.consume(10, timeout=1.0):
                assert msg.error() is None, msg.error()
                record = deserializer(msg.value(), SerializationContext(topic, MessageField.VALUE))
                assert isinstance(record, dict)
                assert record["partition_key"].encode() == msg.key()
                read[record["event_id"]] = record
            if len(read) >= len(sent):
                break
    finally:
        consumer.close()

    assert set(read) == set(sent)
    for event_id, (provider, body) in sent.items():
        record = read[event_id]
        assert (record["provider"], record["payload"], record["schema_version"]) == (provider, body, 3)
        assert record["partition_key"]
        # Only Fast.io has workspaces; the others' key is not one.
        assert (record["workspace_id"] is not None) == (provider == "fastio")
