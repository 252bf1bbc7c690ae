"""librdkafka configuration for Hookstream's clients: frozen, typed, one method to a dict.

Creating a client is left to its owner (the publisher, the consumer runtime, the admin
helpers), always lazily: librdkafka's threads do not survive gunicorn's fork.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from confluent_kafka import Consumer, KafkaException, Producer

from hookstream.errors import ConfigError
from hookstream.settings import KafkaConf, Settings, librdkafka_variable


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


def check_passthrough(settings: Settings) -> None:
    """Refuse, in one line naming the variable, a HOOKSTREAM_LIBRDKAFKA_* librdkafka would refuse.

    librdkafka checks every name and value when a client is built, so building a throwaway
    producer and consumer with the real configurations checks them all: no list of properties
    is kept here. Without bootstrap servers they never connect; log_level 0 keeps them quiet.
    """
    extra = settings.kafka_extra
    refusal = _refusal(extra)
    if refusal is None:
        return
    # Name the variables refused on their own; when only their combination is (a sasl.* without
    # its partner), name them all.
    alone = [prop for prop in extra if _refusal({prop: extra[prop]}) is not None]
    names = ", ".join(librdkafka_variable(prop) for prop in alone or extra)
    raise ConfigError(f"{names}: librdkafka refuses it: {refusal}")


def _refusal(extra: Mapping[str, str]) -> str | None:
    """librdkafka's reason to refuse EXTRA in Hookstream's clients, or None when both accept it."""
    quiet = {"log_level": 0}
    try:
        Producer({**ProducerConfig(common=extra).as_librdkafka(), **quiet})
        Consumer({**ConsumerConfig("check", common=extra).as_librdkafka(), **quiet})
    except KafkaException as exc:
        return str(exc.args[0].str())
    return None
