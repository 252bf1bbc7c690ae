"""Where a record that cannot be processed goes: the DLQ, counted by the circuit breaker."""

from __future__ import annotations

import logging

from confluent_kafka import Message

from consumers.breaker import Breaker
from consumers.dlq import DeadLetterPublisher
from consumers.errors import CircuitOpenError
from consumers.metrics import MemberMetrics

log = logging.getLogger("hookstream.consumers")


class DeadLetterRoute:
    def __init__(
        self, group: str, publisher: DeadLetterPublisher, breaker: Breaker, metrics: MemberMetrics
    ) -> None:
        self._group = group
        self._publisher = publisher
        self._breaker = breaker
        self._metrics = metrics

    def handled(self) -> None:
        self._breaker.record(False)

    def send(self, msg: Message, error: Exception, attempts: int, reason: str) -> None:
        """Publish to the DLQ; returns once Kafka acknowledged it (raises DeadLetterError if not)."""
        self._publisher.publish(msg, error, attempts, reason)
        self._breaker.record(True)
        self._metrics.dead_lettered(reason)
        log.warning(
            "record dead-lettered",
            extra={
                "fields": {
                    "group": self._group,
                    "reason": reason,
                    "topic": msg.topic(),
                    "partition": msg.partition(),
                    "offset": msg.offset(),
                    "attempts": attempts,
                    "error": f"{type(error).__name__}: {error}",
                }
            },
        )

    def check_breaker(self) -> None:
        if self._breaker.is_open:
            raise CircuitOpenError(
                f"group {self._group} stopped by its circuit breaker: {self._breaker.describe()}; "
                f"inspect them with `hookstream dlq list --group {self._group}`, fix the cause, restart"
            )

    def close(self) -> None:
        self._publisher.close()
