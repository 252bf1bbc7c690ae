"""The one place the producer talks to Kafka: publish a record and wait for its ack.

One confluent-kafka Producer per worker process, created on first use: librdkafka's threads
do not survive gunicorn's fork. A native thread polls it (`poll()` waits in C without the
GIL) and so runs the delivery callbacks; how an ack reaches the waiting request depends on
the worker class (`producer.handoff`). A request waits at most `delivery_timeout_s`, then
raises `PublishError` (the HTTP layer answers 503); librdkafka keeps retrying the record,
which may still land: a duplicate the consumers drop by event_id, never a loss. After a
fatal client error the next request builds a new producer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from hookstream.kafka import ProducerConfig
from hookstream.kafka_access import denied, watched
from hookstream.settings import Settings
from producer import handoff, metrics
from producer.errors import PublishError, RecordTooLarge

log = logging.getLogger(__name__)

Header = tuple[str, bytes]

_POLL_WAIT_S = 0.5  # only bounds how late the poll thread notices its producer was replaced


def _too_large(size: int) -> str:
    return (
        f"the event's record ({size} bytes with its envelope) is larger than Kafka accepts"
        " (message.max.bytes, the topic's max.message.bytes)"
    )


class Publisher:
    def __init__(self, settings: Settings, config: ProducerConfig | None = None) -> None:
        self.topic = settings.topic
        self.timeout_s = settings.delivery_timeout_s
        # The watch keeps why Kafka refused us (credentials, certificate): /readyz names it.
        conf = (config or ProducerConfig.from_settings(settings)).as_librdkafka()
        self._conf, self._watch = watched(conf, log)
        self._lock = threading.Lock()
        self._producer: Producer | None = None
        self._handoff: handoff.Handoff | None = None
        self._pid = 0
        self._broken = False

    def publish(
        self, key: bytes, value: bytes, headers: Sequence[Header], timeout_s: float | None = None
    ) -> None:
        """Return once Kafka holds the record (acks=all) within `timeout_s` (default: the
        delivery timeout); else raise `PublishError`."""
        wait_s = self.timeout_s if timeout_s is None else timeout_s
        producer, hand = self._current()
        slot = hand.slot()
        started = time.perf_counter()
        try:
            producer.produce(self.topic, value, key, headers=[*headers], on_delivery=slot.deliver)
        except BufferError as exc:
            self._failed("error")
            raise PublishError("error", "the producer's local queue is full; Kafka is slow or down") from exc
        except KafkaException as exc:
            self._failed("error")
            if exc.args[0].code() == KafkaError.MSG_SIZE_TOO_LARGE:
                raise RecordTooLarge("error", _too_large(len(value))) from exc
            raise PublishError("error", f"Kafka refused the record: {exc}") from exc
        if not slot.wait(wait_s):
            self._failed("timeout")
            raise PublishError("timeout", f"Kafka did not acknowledge within {self.timeout_s:g}s")
        if slot.error is not None:
            self._failed("error")
            if slot.error.code() == KafkaError.MSG_SIZE_TOO_LARGE:  # the topic's max.message.bytes
                raise RecordTooLarge("error", _too_large(len(value)))
            why = denied(slot.error, "WRITE", f"topic {self.topic}", self._watch.conf) or slot.error.str()
            raise PublishError("error", f"Kafka did not take the record: {why}")
        metrics.DELIVERY_DURATION.observe(time.perf_counter() - started)

    def ready(self, timeout_s: float = 1.0) -> tuple[bool, str]:
        """Whether a broker answers and knows the topic (with partitions); and why not."""
        producer, hand = self._current()
        try:
            topics = hand.blocking(lambda: producer.list_topics(self.topic, timeout=timeout_s)).topics
        except KafkaException as exc:
            why = self._watch.cause or exc.args[0].str()
            return False, f"Kafka did not answer within {timeout_s:g}s: {why}"
        meta = topics.get(self.topic)
        if meta is not None and meta.error is not None:
            missing = denied(meta.error, "DESCRIBE", f"topic {self.topic}", self._watch.conf)
            if missing is not None:
                return False, missing
        if meta is None or meta.error is not None or not meta.partitions:
            reason = meta.error.str() if meta is not None and meta.error is not None else "no partitions"
            return False, f"topic {self.topic!r} is not available: {reason}"
        return True, f"topic {self.topic!r} has {len(meta.partitions)} partitions"

    def connect(self) -> None:
        """Create the client (if this process has none) so it connects in the background now."""
        self._current()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop polling and give records still queued a last chance to be delivered."""
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            remaining = producer.flush(timeout_s)
            if remaining:
                log.warning("records left undelivered at shutdown", extra={"fields": {"count": remaining}})

    def _current(self) -> tuple[Producer, handoff.Handoff]:
        producer, hand = self._producer, self._handoff
        if producer is not None and hand is not None and not self._broken and self._pid == os.getpid():
            return producer, hand
        with self._lock:
            if self._producer is None or self._broken or self._pid != os.getpid():
                self._start()
            assert self._producer is not None and self._handoff is not None
            return self._producer, self._handoff

    def _start(self) -> None:
        """A new Producer and its poll thread; the old one (fatal, or from before a fork) is dropped
        and its thread ends."""
        if self._handoff is None or self._pid != os.getpid():
            self._handoff = handoff.for_this_worker()
        hand = self._handoff
        producer = Producer(
            {**self._conf, "error_cb": lambda error: hand.call(lambda: self._on_error(error))}
        )
        self._producer, self._pid, self._broken = producer, os.getpid(), False
        hand.start_thread(lambda: self._poll(producer))

    def _poll(self, producer: Producer) -> None:
        while self._producer is producer:
            producer.poll(_POLL_WAIT_S)

    def _on_error(self, error: KafkaError) -> None:
        # Most errors (broker down, all brokers down) are transient: librdkafka reconnects.
        fields: dict[str, Any] = {"code": error.name(), "reason": error.str(), "fatal": error.fatal()}
        log.warning("kafka client error", extra={"fields": fields})
        if error.fatal():
            self._broken = True

    @staticmethod
    def _failed(reason: str) -> None:
        metrics.DELIVERY_FAILURES.labels(reason).inc()
