"""How the producer writes an envelope: `build_serializer(settings).encode(envelope)`.

Without a registry, Hookstream's own framing (`schemas.codec`). With
HOOKSTREAM_SCHEMA_REGISTRY_URL, the Confluent wire format under subject `<topic>-value`, written
by confluent-kafka's own `AvroSerializer`, so every Kafka tool reads the topic. The schema id is
registered (or found, when it already is) once per process: by `ready()`, which the readiness
probe calls, or else by the first record. After that no record waits on the registry, so a
registry outage never fails a request once the worker is ready.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol

from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext, SerializationError

from hookstream.errors import SchemaError, SchemaRegistryUnavailable
from hookstream.settings import Settings
from schemas import codec, registry


class Serializer(Protocol):
    def encode(self, envelope: codec.Envelope) -> bytes:
        """The record value; `SchemaError` when the envelope breaks the contract,
        `SchemaRegistryUnavailable` when the schema id is not known yet and cannot be had
        (the registry is unreachable, or refuses the schema)."""

    def ready(self) -> tuple[bool, str]:
        """Whether records can be written now, and why not (for /readyz)."""


class OwnFraming:
    """Hookstream's `b"H"` framing: needs nothing outside the process."""

    def encode(self, envelope: codec.Envelope) -> bytes:
        return codec.encode(envelope)

    def ready(self) -> tuple[bool, str]:
        return True, "own framing"


# Written (and thrown away) to register the schema; never produced.
_PROBE = codec.Envelope(
    event_id="readiness-probe",
    provider="hookstream",
    event_type="readiness-probe",
    workspace_id=None,
    partition_key="readiness-probe",
    payload=b"{}",
    received_at=datetime(1970, 1, 1, tzinfo=UTC),
)


class RegistryFraming:
    """The Confluent wire format: magic byte 0, the schema id (4 bytes), then Avro."""

    def __init__(self, settings: Settings) -> None:
        self._client = registry.client(settings)
        self.subject = registry.subject(settings.topic)
        self._context = SerializationContext(settings.topic, MessageField.VALUE)
        self._serializer = AvroSerializer(
            self._client,
            registry.local_schema_text(),
            conf={"auto.register.schemas": True, "subject.name.strategy.type": "TOPIC"},
        )
        self._lock = threading.Lock()
        self.schema_id: int | None = None

    def ready(self) -> tuple[bool, str]:
        if self.schema_id is None:
            try:
                self._register()
            except SchemaRegistryUnavailable as exc:
                return False, str(exc)
        return True, f"schema id {self.schema_id} under {self.subject}"

    def _register(self) -> None:
        """Register the newest local schema under the subject (the registry answers with the
        existing id when it is there already) by writing a probe record through the serializer
        itself: its own path registers and remembers the subject, so no record after this one
        asks the registry anything, whatever the registry's answer looked like."""
        with self._lock:
            if self.schema_id is not None:
                return
            answer = registry.call(
                f"register the envelope schema under {self.subject}",
                lambda: self._serializer(codec.as_record(_PROBE), self._context),
            )
            if isinstance(answer, registry.RegistryAnswer):
                # Not the sender's fault, and not this record's: no id, no writing (503, not ready).
                raise SchemaRegistryUnavailable(
                    f"the registry refused envelope v{codec.CURRENT_VERSION} under {self.subject} "
                    f"(HTTP {answer.status}): {answer.message}"
                )
            assert answer is not None  # None only for a None record
            self.schema_id = int.from_bytes(answer[1:5], "big")

    def encode(self, envelope: codec.Envelope) -> bytes:
        if self.schema_id is None:
            self._register()
        try:
            value = self._serializer(codec.as_record(envelope), self._context)
        except (SerializationError, ValueError, TypeError, KeyError) as exc:
            raise SchemaError(f"envelope {envelope.event_id!r} does not fit the registered schema") from exc
        assert value is not None  # None only for a None record
        return value


def build_serializer(settings: Settings) -> Serializer:
    """The registry framing when a registry URL is set, else Hookstream's own."""
    if settings.schema_registry_url:
        return RegistryFraming(settings)
    return OwnFraming()
