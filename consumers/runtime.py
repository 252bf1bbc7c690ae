"""One member of a consumer group: the poll loop, and the order of one batch's steps.

    consume batch ─▶ decode (decoding.py: poison, replays for another group, registry waits)
                  ─▶ handler.start_batch(decoded records)
                  ─▶ per record: handler ──transient──▶ retry in place (retry.py, paused: pausing.py)
                                 poison / permanent / retries used up ──▶ DLQ (dead_letters.py)
                  ─▶ handler.pre_commit(processed) ─▶ store the offsets it vouches for (frontier.py)
                  ─▶ auto-commit (batched; at once, asynchronously, for a handler that holds
                     records, which hears of each confirmed commit: handler.committed)

An offset is stored only once its record's effect is durable or its DLQ copy acknowledged.
On revoke, and on SIGTERM/SIGINT after the current batch, the handler is asked once more and
what it vouches for is committed before the partitions leave. Lag gauges: member_lag.py.
"""

from __future__ import annotations

import gc
import logging
import time
from itertools import chain

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from consumers import messages
from consumers.breaker import Breaker
from consumers.dead_letters import DeadLetterRoute
from consumers.decoding import Decoder, Outcome
from consumers.dlq import DeadLetterPublisher
from consumers.errors import CircuitOpenError, ConsumerError, FlushError, UnavailableError, is_transient
from consumers.frontier import OffsetFrontier
from consumers.handler import Handler, Record
from consumers.member_lag import MemberLag
from consumers.metrics import MemberMetrics
from consumers.pausing import Interrupted, PartitionGone, Pauser
from consumers.retry import RetryPolicy
from hookstream.errors import SchemaError
from hookstream.kafka import ConsumerConfig
from hookstream.kafka_access import cause_of, denied, watched
from hookstream.settings import Settings

log = logging.getLogger("hookstream.consumers")

TopicPartitionKey = tuple[str, int]


class Member:
    """Runs one group member until `stop()` (or a signal that calls it)."""

    def __init__(
        self,
        settings: Settings,
        group: str,
        handler: Handler,
        *,
        retry: RetryPolicy | None = None,
        breaker: Breaker | None = None,
        dead_letters: DeadLetterPublisher | None = None,
        poll_timeout_s: float = 0.1,
        lag_interval_s: float = 5.0,
        **consumer_overrides: object,
    ) -> None:
        self.group = group
        self.settings = settings
        self._handler = handler
        self._retry = retry or RetryPolicy.from_settings(settings)
        self.metrics = MemberMetrics(group)
        self._dead_letters = DeadLetterRoute(
            group,
            dead_letters or DeadLetterPublisher(settings, group),
            breaker or Breaker.from_settings(settings),
            self.metrics,
        )
        self._config = ConsumerConfig.from_settings(
            settings,
            settings.consumer_group_prefix + group,
            **{"session_timeout_ms": settings.consumer_session_timeout_ms, **consumer_overrides},
        )
        self._batch_size = settings.consumer_batch_size
        # consume() returns when the batch is full or this runs out: it bounds the latency a
        # quiet topic adds, and how long SIGTERM waits.
        self._poll_timeout_s = poll_timeout_s

        self._consumer: Consumer | None = None
        self._stopping = False
        # Why Kafka refused this member (credentials, certificate): retrying cannot help.
        self._refused: str | None = None
        self._healthy = True
        # Partitions revoked while the current batch is processed: their remaining records
        # belong to the new owner now.
        self._gone: set[TopicPartitionKey] = set()
        self._pauser = Pauser(
            lambda: self._consumer,
            min(10.0, self._config.max_poll_interval_ms / 1000 / 3),
            lambda: self._stopping,
            self._gone,
        )
        self._decoder = Decoder(settings, group, self._retry, self.metrics, self._pauser.wait)
        self._frontier = OffsetFrontier()
        self._lag = MemberLag(self.metrics, lag_interval_s)
        # Records finished, and the received_at of those handled, since the last flush.
        self._finished = 0
        self._received: list[float] = []

    # -- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the current batch, commit, leave the group. Safe to call from a signal handler."""
        self._stopping = True

    def run(self) -> None:
        librdkafka, self._watch = watched(self._config.as_librdkafka(), log)
        conf = {**librdkafka, "on_commit": self._on_commit, "error_cb": self._on_kafka_error}
        consumer = self._consumer = Consumer(conf)
        consumer.subscribe(
            [self.settings.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        log.info(
            "member started",
            extra={
                "fields": {
                    "group": self.group,
                    "group_id": self._config.group_id,
                    "topic": self.settings.topic,
                }
            },
        )
        _tune_collector()
        clean = False
        try:
            while not self._stopping:
                batch = consumer.consume(self._batch_size, timeout=self._poll_timeout_s)
                self._gone.clear()
                self._pauser.polled()
                self._process_batch(batch)
            clean = True
        except CircuitOpenError:
            self.metrics.circuit_open.set(1)
            clean = True  # what was processed was made durable and stored before the breaker raised
            raise
        finally:
            if not clean:
                # Records processed but not vouched for must not have their offsets stored on the
                # way out, and the handler's state is suspect: the revoke in close() only commits.
                self._frontier.abandon()
                self._healthy = False
            try:
                self._commit()
                consumer.close()  # leaves the group; the revoke callback commits what is stored
            finally:
                self._consumer = None
                self._handler.close()
                self._dead_letters.close()
            log.info("member stopped", extra={"fields": {"group": self.group, "clean": clean}})
        if self._refused is not None:
            raise ConsumerError(f"group {self.group} cannot consume: {self._refused}")

    # -- the batch -----------------------------------------------------------------------------

    def _process_batch(self, batch: list[Message]) -> None:
        if batch:
            self.metrics.consumed.inc(len(batch))
        self._lag.refresh(self._consumer, batch)
        try:
            self._process_records(batch)
        except Interrupted:
            pass
        except CircuitOpenError:
            self._finish_batch()  # every record processed before the breaker opened is done
            raise
        self._finish_batch()

    def _process_records(self, batch: list[Message]) -> None:
        decoded = self._decode(batch)
        started: dict[int, int] = {}  # partition -> the first record consumed since it was assigned
        for _, (_, partition), offset, _ in decoded:
            if partition not in self._frontier.processed:
                started.setdefault(partition, offset)
        if started:
            # Consumption resumes at the committed offset (or, for a new group, nothing before
            # it was ever the group's): for the handler, as good as a confirmed commit.
            self._handler.committed(started)
        self._handler.start_batch([outcome for _, _, _, outcome in decoded if isinstance(outcome, Record)])
        for msg, key, offset, outcome in decoded:
            if key in self._gone:
                continue
            try:
                self._process(msg, outcome)
            except PartitionGone:
                continue
            self._frontier.finished(key[1], offset)
            self._dead_letters.check_breaker()
            self._pauser.keep_alive_if_due()

    def _decode(self, batch: list[Message]) -> list[tuple[Message, TopicPartitionKey, int, Outcome]]:
        """Every record of the batch with what decoding made of it; error events are dealt with
        here and left out, and so are records of a partition revoked while decoding waited."""
        decoded: list[tuple[Message, TopicPartitionKey, int, Outcome]] = []
        for msg in batch:
            if msg.error() is not None:
                self._on_message_error(msg)
                continue
            topic, partition, offset = messages.position(msg)
            key = (topic, partition)
            try:
                outcome = self._decoder.outcome(msg, key, offset)
            except PartitionGone:
                continue
            decoded.append((msg, key, offset, outcome))
        return decoded

    def _finish_batch(self) -> None:
        self._flush_and_store()
        self._pauser.resume()

    def _process(self, msg: Message, outcome: Outcome) -> None:
        if outcome is None:
            self._finished += 1
            return
        if isinstance(outcome, SchemaError):
            self._dead_letter(msg, outcome, attempts=0, reason="poison")
            return
        started = time.perf_counter()
        attempts, error = self._handle(outcome)
        self.metrics.processing.observe(time.perf_counter() - started)
        if error is None:
            self._dead_letters.handled()
            self._received.append(outcome.envelope.received_at.timestamp())
            self._finished += 1
        else:
            reason = "retries_exhausted" if is_transient(error) else "permanent"
            self._dead_letter(msg, error, attempts, reason)

    def _dead_letter(self, msg: Message, error: Exception, attempts: int, reason: str) -> None:
        self._dead_letters.send(msg, error, attempts, reason)  # raises unless Kafka acknowledged it
        self._finished += 1

    def _handle(self, record: Record) -> tuple[int, Exception | None]:
        """Call the handler, retrying transient errors in place; (attempts, final error or None)."""
        try:
            self._handler.handle(record)
            return 1, None
        except Exception as exc:
            error = exc
        if not is_transient(error):
            return 1, error
        return self._retry_in_place(record, error)

    def _retry_in_place(self, record: Record, error: Exception) -> tuple[int, Exception | None]:
        """Retry within the policy's budget; an `UnavailableError` (the group's state store down)
        is outside it: retried until the store answers, never dead-lettered."""
        attempt = 1
        budget = self._retry.delays()
        while True:
            wait = (
                self._retry.outage_delay(attempt)
                if isinstance(error, UnavailableError)
                else next(budget, None)
            )
            if wait is None:
                break
            self.metrics.retries.inc()
            log.warning(
                "transient failure, retrying",
                extra={
                    "fields": {
                        "group": self.group,
                        "event_id": record.envelope.event_id,
                        "attempt": attempt,
                        "retry_in_s": round(wait, 3),
                        "error": f"{type(error).__name__}: {error}",
                    }
                },
            )
            self._pauser.wait(wait, (record.topic, record.partition))
            attempt += 1
            try:
                self._handler.handle(record)
                return attempt, None
            except Exception as exc:
                error = exc
            if not is_transient(error):
                break
        return attempt, error

    # -- what is durable, storing, committing ----------------------------------------------------

    def _flush_and_store(self) -> None:
        """Ask the handler which processed offsets are durable, then store those."""
        self._frontier.declare(self._pre_commit())
        stored = self._frontier.take_stored()
        topic = self.settings.topic
        if stored and self._consumer is not None:
            self._consumer.store_offsets(
                offsets=[TopicPartition(topic, partition, offset) for partition, offset in stored.items()]
            )
            if self._handler.holds_records:
                # Not waited for: Kafka's confirmation reaches the handler (`committed`) through
                # the commit callback, which the next consume serves.
                self._consumer.commit(asynchronous=True)
        for partition in self._frontier.processed:
            self.metrics.set_not_durable(topic, partition, self._frontier.not_durable(partition))
        # Metrics are added once per batch: a lock per record costs the hot loop.
        if self._finished:
            self.metrics.processed.inc(self._finished)
            self._finished = 0
        if self._received:
            now = time.time()
            for received in self._received:
                self.metrics.end_to_end.observe(now - received)
            self._received.clear()
        self.metrics.processing.publish()
        self.metrics.end_to_end.publish()

    def _pre_commit(self) -> dict[int, int]:
        for wait in chain(self._retry.delays(), [None]):
            try:
                return self._handler.pre_commit(dict(self._frontier.processed))
            except Exception as exc:
                if wait is None or not is_transient(exc):
                    raise FlushError(f"group {self.group} could not make its batch durable: {exc}") from exc
                self.metrics.retries.inc()
                time.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _commit(self) -> None:
        if self._consumer is None:
            return
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                # The new owner re-processes what this commit would have covered: idempotent.
                log.warning("commit failed", extra={"fields": {"group": self.group, "error": str(exc)}})
            return
        self.metrics.last_commit.set_to_current_time()

    # -- callbacks -----------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.rebalance("assign")
        log.info(
            "partitions assigned", extra={"fields": {"group": self.group, "partitions": _names(partitions)}}
        )
        self._handler.assigned(sorted(tp.partition for tp in partitions if tp.topic == self.settings.topic))
        if self._pauser.paused and partitions:
            consumer.incremental_assign(partitions)
            consumer.pause(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.rebalance("revoke")
        log.info(
            "partitions revoked", extra={"fields": {"group": self.group, "partitions": _names(partitions)}}
        )
        if self._healthy:
            self._flush_and_store()
        self._commit()
        self._forget(partitions)

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.rebalance("lost")
        log.warning(
            "partitions lost", extra={"fields": {"group": self.group, "partitions": _names(partitions)}}
        )
        # Another member owns them already: committing for them now could move its offsets back.
        self._forget(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        """Drop what is kept for partitions that left (their offsets were committed, or are lost)."""
        ours = [tp.partition for tp in partitions if tp.topic == self.settings.topic]
        self._frontier.forget(ours)
        self._handler.revoked(ours)
        for tp in partitions:
            self._gone.add((tp.topic, tp.partition))
            self._lag.forget((tp.topic, tp.partition))
            self.metrics.forget_partition(tp.topic, tp.partition)

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is None:
            confirmed = {
                tp.partition: tp.offset
                for tp in partitions
                if tp.topic == self.settings.topic and tp.error is None and tp.offset >= 0
            }
            if confirmed:
                self._handler.committed(confirmed)
            self.metrics.last_commit.set_to_current_time()
        elif error.code() != KafkaError._NO_OFFSET:
            log.warning("offset commit failed", extra={"fields": {"group": self.group, "error": str(error)}})

    def _on_kafka_error(self, error: KafkaError) -> None:
        refused = cause_of(error, self._watch.conf)
        if refused is not None:
            self._refused = refused
            self._stopping = True  # one clear line at start (hookstream consume), not endless retries
            return
        log.warning("kafka client error", extra={"fields": {"group": self.group, "error": str(error)}})

    def _on_message_error(self, msg: Message) -> None:
        error = msg.error()
        if error is None or error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            raise KafkaException(error)
        on_group = error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED
        resource = f"group {self._config.group_id}" if on_group else f"topic {self.settings.topic}"
        missing = denied(error, "READ", resource, self._watch.conf)
        if missing is not None:
            raise ConsumerError(f"group {self.group} cannot consume: {missing}")
        log.warning("consume error", extra={"fields": {"group": self.group, "error": str(error)}})


# Container allocations between two collections of the youngest generation (CPython's default: 700).
YOUNG_COLLECTION_THRESHOLD = 50_000


def _tune_collector() -> None:
    """Set the process's garbage collector up for the poll loop, which allocates a few objects per
    record and keeps few of them. With the defaults, a young collection every 700 allocations and
    a full one every 70,000, each full one walking every object that imports and setup left
    (botocore's alone are many), cost the archiver about 14% of its rate: 14,000 events/s
    against 16,300 with these settings, in `bench.archive_sink`. What exists now is frozen (never
    walked again), and the youngest generation is collected every 50,000 allocations, so cyclic
    garbage waits a little longer (a few MB at most)."""
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, 50, 100)


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]
