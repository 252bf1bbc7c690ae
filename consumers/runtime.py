"""One member of a consumer group: poll a batch, process it, store offsets only after.

    consume batch ─▶ decode each record; handler.start_batch(decoded records)
                  ─▶ per record: replay for another group? skip
                                 poison ──▶ DLQ (acked)
                                 handler ──transient──▶ retry in place (backoff, keeps polling)
                                         ──permanent / retries used up──▶ DLQ (acked)
                  ─▶ handler.flush() (effects durable) ─▶ store offsets ─▶ auto-commit (batched)

At-least-once: an offset is stored only once its record's effect is durable or its DLQ copy is
acknowledged, so a crash at any point makes Kafka deliver the record again and the handler's
idempotency (by event_id) absorbs the repeat. On revoke, and on SIGTERM/SIGINT after the
current batch, what was processed is flushed and committed synchronously before the
partitions leave. During long retries every partition is paused and the consumer keeps
polling, so a slow record never exceeds max.poll.interval.ms and costs the member its group.
"""

from __future__ import annotations

import logging
import time
from itertools import chain

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from consumers import messages
from consumers.breaker import Breaker
from consumers.dlq import REPLAY_GROUP, DeadLetterPublisher
from consumers.errors import CircuitOpenError, FlushError, is_transient
from consumers.frontier import OffsetFrontier
from consumers.handler import Handler, Record
from consumers.metrics import MemberMetrics
from consumers.retry import RetryPolicy
from hookstream.errors import SchemaError, SchemaRegistryUnavailable
from hookstream.kafka import ConsumerConfig
from hookstream.settings import Settings
from schemas import codec
from schemas.decoder import Decoder, build_decoder

log = logging.getLogger("hookstream.consumers")

TopicPartitionKey = tuple[str, int]
# What decoding made of a record: the record, why it is poison, or None when it is not ours.
_Outcome = Record | SchemaError | None


class _Interrupted(Exception):
    """Stop processing the batch here: the member is shutting down."""


class _PartitionGone(Exception):
    """The record's partition was revoked while it was being retried: its new owner takes it."""


def decode(value: bytes | None, decoder: Decoder) -> codec.Envelope:
    """The envelope in `value`, or SchemaError when the record breaks the contract (poison)."""
    envelope = decoder.decode(value)
    if not (envelope.event_type and envelope.partition_key and envelope.provider):
        empty = [name for name in ("event_type", "partition_key", "provider") if not getattr(envelope, name)]
        raise SchemaError(f"envelope {envelope.event_id!r} has an empty {empty[0]}")
    return envelope


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
        self._breaker = breaker or Breaker.from_settings(settings)
        self._dlq = dead_letters or DeadLetterPublisher(settings, group)
        self._replay_address = group.encode()
        self._decoder = build_decoder(settings)  # both framings; registry schemas cached per member
        self.metrics = MemberMetrics(group)
        self._config = ConsumerConfig.from_settings(
            settings,
            settings.consumer_group_prefix + group,
            **{"session_timeout_ms": settings.consumer_session_timeout_ms, **consumer_overrides},
        )
        self._batch_size = settings.consumer_batch_size
        # consume() returns when the batch is full or this runs out: it bounds the latency a
        # quiet topic adds, and how long SIGTERM waits.
        self._poll_timeout_s = poll_timeout_s
        self._lag_interval_s = lag_interval_s
        # Poll at least this often while a batch is slow, well inside max.poll.interval.ms.
        self._keepalive_s = min(10.0, self._config.max_poll_interval_ms / 1000 / 3)

        self._consumer: Consumer | None = None
        self._stopping = False
        self._healthy = True
        self._paused = False
        self._last_poll = 0.0
        self._frontier = OffsetFrontier()
        # Records finished, and the received_at of those handled, since the last flush.
        self._finished = 0
        self._received: list[float] = []
        # Partitions revoked while the current batch is processed: their remaining records
        # belong to the new owner now.
        self._gone: set[TopicPartitionKey] = set()
        self._next_lag_at = 0.0
        self._lag_seconds_hint: dict[TopicPartitionKey, float] = {}

    # -- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Finish the current batch, commit, leave the group. Safe to call from a signal handler."""
        self._stopping = True

    def run(self) -> None:
        conf = {
            **self._config.as_librdkafka(),
            "on_commit": self._on_commit,
            "error_cb": self._on_kafka_error,
        }
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
        clean = False
        try:
            while not self._stopping:
                batch = consumer.consume(self._batch_size, timeout=self._poll_timeout_s)
                self._gone.clear()
                self._last_poll = time.monotonic()
                self._process_batch(batch)
            clean = True
        except CircuitOpenError:
            self.metrics.circuit_open.set(1)
            clean = True  # what was processed was flushed and stored before the breaker raised
            raise
        finally:
            if not clean:
                # Records handled but not flushed must not have their offsets stored on the way
                # out, and the handler's state is suspect: the revoke in close() only commits.
                self._frontier.abandon()
                self._healthy = False
            try:
                self._commit()
                consumer.close()  # leaves the group; the revoke callback commits what is stored
            finally:
                self._consumer = None
                self._handler.close()
                self._dlq.close()
            log.info("member stopped", extra={"fields": {"group": self.group, "clean": clean}})

    # -- the batch -----------------------------------------------------------------------------

    def _process_batch(self, batch: list[Message]) -> None:
        if batch:
            self.metrics.consumed.inc(len(batch))
        self._refresh_lag(batch)
        try:
            self._process_records(batch)
        except _Interrupted:
            pass
        except CircuitOpenError:
            self._finish_batch()  # every record processed before the breaker opened is done
            raise
        self._finish_batch()

    def _process_records(self, batch: list[Message]) -> None:
        decoded = self._decode(batch)
        self._handler.start_batch([outcome for _, _, _, outcome in decoded if isinstance(outcome, Record)])
        for msg, key, offset, outcome in decoded:
            if key in self._gone:
                continue
            try:
                self._process(msg, outcome)
            except _PartitionGone:
                continue
            self._frontier.finished(key[1], offset)
            if self._breaker.is_open:
                raise CircuitOpenError(
                    f"group {self.group} stopped by its circuit breaker: {self._breaker.describe()}; "
                    f"inspect them with `hookstream dlq list --group {self.group}`, fix the cause, restart"
                )
            if time.monotonic() - self._last_poll > self._keepalive_s:
                self._keepalive(0)

    def _decode(self, batch: list[Message]) -> list[tuple[Message, TopicPartitionKey, int, _Outcome]]:
        """Every record of the batch with its decoded form: a Record, the SchemaError of a
        poison record, or None for a replay meant for another group. Error events are dealt
        with here and left out."""
        decoded: list[tuple[Message, TopicPartitionKey, int, _Outcome]] = []
        for msg in batch:
            if msg.error() is not None:
                self._on_message_error(msg)
                continue
            topic, partition, offset = messages.position(msg)
            outcome: _Outcome = None
            if not self._addressed_elsewhere(msg):
                value = msg.value() or b""
                try:
                    envelope = self._decode_value(value, (topic, partition))
                    outcome = Record(envelope, topic, partition, offset, msg.timestamp()[1], value)
                except SchemaError as exc:
                    outcome = exc
                except _PartitionGone:
                    continue
            decoded.append((msg, (topic, partition), offset, outcome))
        return decoded

    def _decode_value(self, value: bytes, key: TopicPartitionKey) -> codec.Envelope:
        """Decode, waiting out an unreachable schema registry (paused, polling) for as long as it
        takes: a record the registry cannot vouch for yet is not poison, so never the DLQ."""
        attempt = 0
        while True:
            try:
                return decode(value, self._decoder)
            except SchemaRegistryUnavailable as exc:
                attempt += 1
                wait = self._retry.delay(min(attempt, 10))
                self.metrics.retries.inc()
                log.warning(
                    "schema registry unavailable, retrying",
                    extra={"fields": {"group": self.group, "attempt": attempt, "error": str(exc)}},
                )
                self._wait(wait, key)

    def _finish_batch(self) -> None:
        self._flush_and_store()
        self._resume()

    def _process(self, msg: Message, outcome: _Outcome) -> None:
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
            self._breaker.record(False)
            self._received.append(outcome.envelope.received_at.timestamp())
            self._finished += 1
        else:
            reason = "retries_exhausted" if is_transient(error) else "permanent"
            self._dead_letter(msg, error, attempts, reason)

    def _addressed_elsewhere(self, msg: Message) -> bool:
        """A replayed DLQ record is for the one group that failed it; the others skip it."""
        headers = msg.headers()
        if not isinstance(headers, list):  # None without headers; never a dict when consumed
            return False
        for name, value in headers:
            if name == REPLAY_GROUP:
                return value != self._replay_address
        return False

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
        attempt = 1
        for wait in self._retry.delays():
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
            self._wait(wait, (record.topic, record.partition))
            attempt += 1
            try:
                self._handler.handle(record)
                return attempt, None
            except Exception as exc:
                error = exc
            if not is_transient(error):
                break
        return attempt, error

    def _dead_letter(self, msg: Message, error: Exception, attempts: int, reason: str) -> None:
        self._dlq.publish(msg, error, attempts, reason)  # raises unless Kafka acknowledged it
        self._breaker.record(True)
        self.metrics.dead_lettered(reason)
        self._finished += 1
        log.warning(
            "record dead-lettered",
            extra={
                "fields": {
                    "group": self.group,
                    "reason": reason,
                    "topic": msg.topic(),
                    "partition": msg.partition(),
                    "offset": msg.offset(),
                    "attempts": attempts,
                    "error": f"{type(error).__name__}: {error}",
                }
            },
        )

    # -- flushing, storing, committing ---------------------------------------------------------

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
                self._commit()
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

    # -- staying in the group while a batch is slow --------------------------------------------

    def _wait(self, seconds: float, key: TopicPartitionKey) -> None:
        """Sleep between attempts while polling (paused), so the group keeps this member."""
        deadline = time.monotonic() + seconds
        while True:
            if self._stopping:
                raise _Interrupted
            if key in self._gone:
                raise _PartitionGone
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._keepalive(min(remaining, 0.5))

    def _keepalive(self, timeout_s: float) -> None:
        consumer = self._consumer
        assert consumer is not None
        if not self._paused:
            consumer.pause(consumer.assignment())
            self._paused = True
        msg = consumer.poll(timeout_s)  # serves rebalance callbacks; paused, so no records
        self._last_poll = time.monotonic()
        if msg is not None and msg.error() is None:
            # A partition assigned mid-batch before it could be paused: read this record later.
            consumer.seek(TopicPartition(*messages.position(msg)))

    def _resume(self) -> None:
        if self._paused and self._consumer is not None:
            self._consumer.resume(self._consumer.assignment())
            self._paused = False

    # -- callbacks -----------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.metrics.rebalance("assign")
        log.info(
            "partitions assigned", extra={"fields": {"group": self.group, "partitions": _names(partitions)}}
        )
        self._handler.assigned(sorted(tp.partition for tp in partitions if tp.topic == self.settings.topic))
        if self._paused and partitions:
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
            self._lag_seconds_hint.pop((tp.topic, tp.partition), None)
            self.metrics.forget_partition(tp.topic, tp.partition)

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is None:
            self.metrics.last_commit.set_to_current_time()
        elif error.code() != KafkaError._NO_OFFSET:
            log.warning("offset commit failed", extra={"fields": {"group": self.group, "error": str(error)}})

    def _on_kafka_error(self, error: KafkaError) -> None:
        log.warning("kafka client error", extra={"fields": {"group": self.group, "error": str(error)}})

    def _on_message_error(self, msg: Message) -> None:
        error = msg.error()
        if error is None or error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            raise KafkaException(error)
        log.warning("consume error", extra={"fields": {"group": self.group, "error": str(error)}})

    # -- lag -----------------------------------------------------------------------------------

    def _refresh_lag(self, batch: list[Message]) -> None:
        """Every few seconds: lag per assigned partition, in messages and in seconds.

        The next record to process is the batch's first one for that partition (its age is
        exact), or else the position after the last batch (its age is then taken from the last
        record seen there: an upper bound until the next record is in hand).
        """
        now = time.monotonic()
        if now < self._next_lag_at or self._consumer is None:
            return
        self._next_lag_at = now + self._lag_interval_s
        consumer = self._consumer
        first: dict[TopicPartitionKey, tuple[int, int]] = {}
        for msg in batch:
            if msg.error() is None:
                topic, partition, offset = messages.position(msg)
                first.setdefault((topic, partition), (offset, msg.timestamp()[1]))
        for key, (_, produced_ms) in first.items():
            self._lag_seconds_hint[key] = produced_ms / 1000
        assignment = consumer.assignment()
        resume = self._resume_offsets([tp for tp in assignment if (tp.topic, tp.partition) not in first])
        wall = time.time()
        for tp in assignment:
            key = (tp.topic, tp.partition)
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            next_offset = first[key][0] if key in first else resume.get(key, -1)
            if high < 0 or next_offset < 0:
                continue  # nothing fetched for it yet: no honest number to report
            behind = max(0, high - next_offset)
            seconds = max(0.0, wall - self._lag_seconds_hint.get(key, wall)) if behind else 0.0
            self.metrics.set_lag(tp.topic, tp.partition, behind, seconds)

    def _resume_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartitionKey, int]:
        """Where processing continues in each of `partitions` (none has a record in hand)."""
        consumer = self._consumer
        if consumer is None or not partitions:
            return {}
        positions = consumer.position(partitions)
        found = {(tp.topic, tp.partition): tp.offset for tp in positions if tp.offset >= 0}
        unread = [tp for tp in partitions if (tp.topic, tp.partition) not in found]
        if unread:
            # Nothing read from them since they were assigned: processing starts at the committed
            # offset, or at the log start when none was ever committed (auto.offset.reset=earliest).
            try:
                committed = consumer.committed(unread, timeout=2)
            except KafkaException:
                return found
            for tp in committed:
                offset = tp.offset if tp.offset >= 0 else consumer.get_watermark_offsets(tp, cached=True)[0]
                if offset >= 0:
                    found[(tp.topic, tp.partition)] = offset
        return found


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]
