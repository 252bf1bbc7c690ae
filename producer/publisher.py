"""The one place the producer talks to Kafka: publish a record and await its ack.

One confluent-kafka Producer per worker process, created on first use (after gunicorn's
fork: librdkafka's threads do not survive one). A daemon thread polls it; `poll()` waits in C
with the GIL released. The delivery callbacks it runs only note each outcome; after each poll
the thread hands the whole batch to the event loop in one `call_soon_threadsafe` (one wake-up
per batch, not per record), where each request's future is resolved. So many requests await
their acks at once and none of them calls flush(). A request waits at most
`delivery_timeout_s`; then it is a 503 and the sender retries. librdkafka keeps retrying the
record in the background, so such a record may still land (a duplicate the consumers drop by
event_id, never a loss). When Kafka returns, the same producer reconnects by itself; after a
fatal error (rare with the idempotent producer) the next request builds a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from hookstream.kafka import ProducerConfig
from hookstream.settings import Settings
from producer import metrics
from producer.errors import PublishError

log = logging.getLogger(__name__)

Header = tuple[str, bytes]
# A record's future and what Kafka said about it (None: acknowledged).
Outcome = tuple["asyncio.Future[KafkaError | None]", "KafkaError | None"]

_POLL_WAIT_S = 0.5  # only bounds how late the thread notices a stop; deliveries wake it at once


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
        # Filled by delivery callbacks (in whichever thread polls or flushes), drained after each
        # poll; a deque because append and popleft are atomic across threads.
        self._outcomes: deque[Outcome] = deque()

    async def publish(self, key: bytes, value: bytes, headers: Sequence[Header]) -> None:
        """Return once Kafka holds the record (acks=all); else raise `PublishError`."""
        producer = self._current()
        delivery: asyncio.Future[KafkaError | None] = asyncio.get_running_loop().create_future()
        outcomes = self._outcomes
        started = time.perf_counter()
        try:
            producer.produce(
                self.topic,
                value,
                key,
                headers=[*headers],
                on_delivery=lambda error, _message: outcomes.append((delivery, error)),
            )
        except BufferError as exc:
            self._failed("error")
            raise PublishError("error", "the producer's local queue is full; Kafka is slow or down") from exc
        except KafkaException as exc:
            self._failed("error")
            raise PublishError("error", f"Kafka refused the record: {exc}") from exc
        try:
            error = await asyncio.wait_for(delivery, self.timeout_s)
        except TimeoutError as exc:
            self._failed("timeout")
            raise PublishError("timeout", f"Kafka did not acknowledge within {self.timeout_s:g}s") from exc
        if error is not None:
            self._failed("error")
            raise PublishError("error", f"Kafka did not take the record: {error.str()}")
        metrics.DELIVERY_DURATION.observe(time.perf_counter() - started)

    def ready(self, timeout_s: float = 1.0) -> tuple[bool, str]:
        """Whether a broker answers and knows the topic (with partitions); and why not.
        Blocks up to `timeout_s`: call it from a thread, never on the event loop."""
        producer = self._current()
        try:
            topics = producer.list_topics(self.topic, timeout=timeout_s).topics
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
            self._hand_over()
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

    def _poll(self, producer: Producer, stop: threading.Event) -> None:
        while not stop.is_set():
            producer.poll(_POLL_WAIT_S)
            self._hand_over()

    def _hand_over(self) -> None:
        """Pass the outcomes collected so far to the loops awaiting them, one call per loop."""
        outcomes = self._outcomes
        batches: dict[asyncio.AbstractEventLoop, list[Outcome]] = {}
        while outcomes:
            outcome = outcomes.popleft()
            batches.setdefault(outcome[0].get_loop(), []).append(outcome)
        for loop, batch in batches.items():
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody awaits these
                loop.call_soon_threadsafe(_resolve, batch)

    def _on_error(self, error: KafkaError) -> None:
        # Most errors (broker down, all brokers down) are transient: librdkafka reconnects.
        fields: dict[str, Any] = {"code": error.name(), "reason": error.str(), "fatal": error.fatal()}
        log.warning("kafka client error", extra={"fields": fields})
        if error.fatal():
            self._broken = True

    @staticmethod
    def _failed(reason: str) -> None:
        metrics.DELIVERY_FAILURES.labels(reason).inc()


def _resolve(batch: list[Outcome]) -> None:
    for delivery, error in batch:
        if not delivery.done():  # a request that timed out cancelled its future
            delivery.set_result(error)
