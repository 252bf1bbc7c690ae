"""The one place the producer talks to Kafka: publish a record and wait for its ack.

One confluent-kafka Producer per worker process, created on first use (after gunicorn's
fork: librdkafka's threads do not survive one). A daemon thread polls it, which runs the
delivery callbacks; each callback releases the lock its request is blocked on, so many
requests wait at once and none of them calls flush(). A request waits at most
`delivery_timeout_s`; then it is a 503 and the sender retries. librdkafka keeps retrying
the record in the background, so such a record may still land (a duplicate the consumers
drop by event_id, never a loss). When Kafka returns, the same producer reconnects by itself;
after a fatal error (rare with the idempotent producer) the next request builds a new one.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from _thread import allocate_lock
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from hookstream.kafka import ProducerConfig
from hookstream.settings import Settings
from producer import metrics
from producer.errors import PublishError

log = logging.getLogger(__name__)

Header = tuple[str, bytes]


def _under_gevent() -> bool:
    """Whether gunicorn's gevent worker monkey-patched threads into greenlets."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("threading"))


class _Delivery:
    """One record's outcome; the waiting request blocks on a bare lock (cheapest wake-up)."""

    __slots__ = ("_done", "error")

    def __init__(self) -> None:
        self._done = allocate_lock()
        self._done.acquire()
        self.error: KafkaError | None = None

    def __call__(self, error: KafkaError | None, _message: Message) -> None:
        self.error = error
        self._done.release()

    def wait(self, timeout_s: float) -> bool:
        return self._done.acquire(timeout=timeout_s)


class Publisher:
    def __init__(self, settings: Settings, config: ProducerConfig | None = None) -> None:
        self.topic = settings.topic
        self.timeout_s = settings.delivery_timeout_s
        self._conf = (config or ProducerConfig.from_settings(settings)).as_librdkafka()
        self._lock = threading.Lock()
        self._producer: Producer | None = None
        self._pid = 0
        self._stop = threading.Event()
        self._broken = False

    def publish(self, key: bytes, value: bytes, headers: Sequence[Header]) -> None:
        """Return once Kafka holds the record (acks=all); else raise `PublishError`."""
        producer = self._current()
        delivery = _Delivery()
        started = time.perf_counter()
        try:
            producer.produce(self.topic, value, key, headers=[*headers], on_delivery=delivery)
        except BufferError as exc:
            self._failed("error")
            raise PublishError("error", "the producer's local queue is full; Kafka is slow or down") from exc
        except KafkaException as exc:
            self._failed("error")
            raise PublishError("error", f"Kafka refused the record: {exc}") from exc
        if not delivery.wait(self.timeout_s):
            self._failed("timeout")
            raise PublishError("timeout", f"Kafka did not acknowledge within {self.timeout_s:g}s")
        if delivery.error is not None:
            self._failed("error")
            raise PublishError("error", f"Kafka did not take the record: {delivery.error.str()}")
        metrics.DELIVERY_DURATION.observe(time.perf_counter() - started)

    def ready(self, timeout_s: float = 1.0) -> tuple[bool, str]:
        """Whether a broker answers and knows the topic (with partitions); and why not."""
        producer = self._current()
        try:
            if _under_gevent():
                # A blocking C call in a greenlet would stall every request of this worker.
                import gevent

                metadata = gevent.get_hub().threadpool.apply(producer.list_topics, (self.topic, timeout_s))
            else:
                metadata = producer.list_topics(self.topic, timeout=timeout_s)
            topics = metadata.topics
        except KafkaException as exc:
            return False, f"Kafka did not answer within {timeout_s:g}s: {exc.args[0].str()}"
        meta = topics.get(self.topic)
        if meta is None or meta.error is not None or not meta.partitions:
            reason = meta.error.str() if meta is not None and meta.error is not None else "no partitions"
            return False, f"topic {self.topic!r} is not available: {reason}"
        return True, f"topic {self.topic!r} has {len(meta.partitions)} partitions"

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop polling and give records still queued a last chance to be delivered."""
        with self._lock:
            producer, self._producer = self._producer, None
            self._stop.set()
        if producer is not None:
            remaining = producer.flush(timeout_s)
            if remaining:
                log.warning("records left undelivered at shutdown", extra={"fields": {"count": remaining}})

    def _current(self) -> Producer:
        producer = self._producer
        if producer is not None and not self._broken and self._pid == os.getpid():
            return producer
        with self._lock:
            if self._producer is None or self._broken or self._pid != os.getpid():
                self._start()
            assert self._producer is not None
            return self._producer

    def _start(self) -> None:
        """A new Producer and its poll thread; the old one (fatal, or from before a fork) is dropped."""
        self._stop.set()  # the old poll thread, if any, ends
        self._stop = threading.Event()
        producer = Producer({**self._conf, "error_cb": self._on_error})
        threading.Thread(
            target=self._poll, args=(producer, self._stop), name="kafka-poll", daemon=True
        ).start()
        self._producer, self._pid, self._broken = producer, os.getpid(), False

    @staticmethod
    def _poll(producer: Producer, stop: threading.Event) -> None:
        if _under_gevent():
            # The "thread" is a greenlet: a blocking poll would stall every request in the
            # worker, so poll without waiting and yield for a millisecond in between.
            import gevent

            while not stop.is_set():
                producer.poll(0)
                gevent.sleep(0.001)
        while not stop.is_set():
            producer.poll(0.5)

    def _on_error(self, error: KafkaError) -> None:
        # Most errors (broker down, all brokers down) are transient: librdkafka reconnects.
        fields: dict[str, Any] = {"code": error.name(), "reason": error.str(), "fatal": error.fatal()}
        log.warning("kafka client error", extra={"fields": fields})
        if error.fatal():
            self._broken = True

    @staticmethod
    def _failed(reason: str) -> None:
        metrics.DELIVERY_FAILURES.labels(reason).inc()
