"""librdkafka configuration for Hookstream's clients: frozen, typed, one method to a dict.

Creating a client is left to its owner (the publisher, the consumer runtime, the admin
helpers), always lazily: librdkafka's threads do not survive gunicorn's fork.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hookstream.settings import KafkaConf, Settings


@dataclass(frozen=True)
class ProducerConfig:
    """A durable producer: every record is on all in-sync replicas before it counts."""

    common: Mapping[str, str] = field(default_factory=dict)
    linger_ms: int = 2
    compression: str = "lz4"
    # librdkafka keeps retrying inside this window; callers wait for less and answer 503.
    delivery_timeout_ms: int = 30_000
    client_id: str = "hookstream"

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> ProducerConfig:
        return cls(common=settings.kafka_common(), **overrides)  # type: ignore[arg-type]

    def as_librdkafka(self) -> KafkaConf:
        return {
            "client.id": self.client_id,
            "compression.type": self.compression,
            "linger.ms": self.linger_ms,
            "delivery.timeout.ms": self.delivery_timeout_ms,
            # HOOKSTREAM_LIBRDKAFKA_* may tune the above (linger.ms, compression.type, ...) ...
            **self.common,
            # ... but never the durability promise behind every 2xx.
            "acks": "all",
            "enable.idempotence": True,
        }


@dataclass(frozen=True)
class ConsumerConfig:
    """A member of a consumer group that stores offsets only for processed records."""

    group_id: str
    common: Mapping[str, str] = field(default_factory=dict)
    auto_offset_reset: str = "earliest"
    max_poll_interval_ms: int = 300_000
    session_timeout_ms: int = 45_000

    @classmethod
    def from_settings(cls, settings: Settings, group_id: str, **overrides: object) -> ConsumerConfig:
        return cls(group_id=group_id, common=settings.kafka_common(), **overrides)  # type: ignore[arg-type]

    def as_librdkafka(self) -> KafkaConf:
        return {
            **self.common,
            "group.id": self.group_id,
            "client.id": f"hookstream-{self.group_id}",
            "auto.offset.reset": self.auto_offset_reset,
            # Offsets are stored by the runtime after processing, then auto-committed in batches.
            "enable.auto.offset.store": False,
            "enable.auto.commit": True,
            "max.poll.interval.ms": self.max_poll_interval_ms,
            "session.timeout.ms": self.session_timeout_ms,
            "partition.assignment.strategy": "cooperative-sticky",
        }
