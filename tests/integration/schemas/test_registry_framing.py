"""The Confluent wire format against a real registry (Apicurio): written by confluent-kafka's
serializer, read by our decoder, with the registry's failures sorted into poison and transient."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from confluent_kafka.schema_registry import Schema
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from hookstream.errors import SchemaError, SchemaRegistryUnavailable
from hookstream.settings import Settings
from hookstream_dev.registry import LocalRegistry
from schemas import codec, registry
from schemas.decoder import build_decoder
from schemas.serializer import RegistryFraming, build_serializer
from tests.unit.schemas.test_codec import make_envelope


def _topic_settings(url: str, topic: str) -> Settings:
    return replace(Settings(), schema_registry_url=url, topic=topic)


def test_written_in_the_confluent_format_under_topic_value_and_read_back(registry_settings: Settings) -> None:
    serializer = build_serializer(registry_settings)
    assert isinstance(serializer, RegistryFraming)
    ready, why = serializer.ready()
    assert ready, why
    envelope = make_envelope(provider="github", workspace_id=None, partition_key="delivery-1")
    value = serializer.encode(envelope)
    assert value[0] == 0 and int.from_bytes(value[1:5], "big") == serializer.schema_id
    client = registry.client(registry_settings)
    latest = client.get_latest_version(f"{registry_settings.topic}-value")
    assert latest.schema_id == serializer.schema_id
    assert json.loads(latest.schema.schema_str or "") == json.loads(registry.local_schema_text())
    assert build_decoder(registry_settings).decode(value) == envelope


def test_an_older_writer_schema_is_resolved_into_the_newest(registry_settings: Settings) -> None:
    """A producer still on v2 (registered under the same subject) is read as v3: its
    workspace_id, which was the key, becomes the partition key."""
    client = registry.client(registry_settings)
    v2 = AvroSerializer(
        client,
        Schema(registry.local_schema_text(2), "AVRO"),
        conf={"subject.name.strategy.type": "TOPIC"},
    )
    context = SerializationContext(registry_settings.topic, MessageField.VALUE)
    value = v2(codec.as_record(make_envelope(workspace_id="ws-2"), version=2), context)
    assert value is not None
    decoded = build_decoder(registry_settings).decode(value)
    assert (decoded.schema_version, decoded.workspace_id, decoded.partition_key) == (2, "ws-2", "ws-2")
    assert decoded.payload == make_envelope().payload


def test_an_id_the_registry_does_not_know_is_poison(registry_settings: Settings) -> None:
    value = build_serializer(registry_settings).encode(make_envelope())
    unknown = b"\x00" + (10**6).to_bytes(4, "big") + value[5:]
    with pytest.raises(SchemaError, match="schema id 1000000 does not exist"):
        build_decoder(registry_settings).decode(unknown)


def test_an_unreachable_registry_fails_readiness_and_is_transient_for_readers() -> None:
    settings = _topic_settings("http://127.0.0.1:9/apis/ccompat/v7", "nowhere")
    ready, why = build_serializer(settings).ready()
    assert not ready and "unreachable" in why
    with pytest.raises(SchemaRegistryUnavailable):
        build_serializer(settings).encode(make_envelope())
    with pytest.raises(SchemaRegistryUnavailable):
        build_decoder(settings).decode(b"\x00\x00\x00\x00\x01\x06")


def test_once_ready_no_record_waits_on_the_registry(own_registry: LocalRegistry, settings: Settings) -> None:
    """The id is had once per process: with the registry gone, writing goes on, and a reader
    that already knows the id goes on too; a reader that does not waits (transient). An id the
    registry denied stays poison for a while without asking again."""
    settings = replace(settings, schema_registry_url=own_registry.url)
    serializer, reader, late_reader = (
        build_serializer(settings),
        build_decoder(settings),
        build_decoder(settings),
    )
    assert serializer.ready()[0]
    first = build_serializer(settings).encode(make_envelope(event_id="evt-1"))
    reader.decode(first)
    unknown = b"\x00" + (10**6).to_bytes(4, "big") + first[5:]
    with pytest.raises(SchemaError, match="does not exist"):
        reader.decode(unknown)
    own_registry.stop()
    later = serializer.encode(make_envelope(event_id="evt-2"))  # its first record: ready() was enough
    assert serializer.ready()[0]
    assert reader.decode(later).event_id == "evt-2"
    with pytest.raises(SchemaRegistryUnavailable):
        late_reader.decode(later)
    with pytest.raises(SchemaError, match="does not exist"):
        reader.decode(unknown)
