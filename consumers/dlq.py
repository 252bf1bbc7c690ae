"""The dead-letter topic: publishing failed records with their story, and reading them back.

A DLQ record keeps the original key and value bytes unchanged and the original headers, plus
readable `dlq.*` string headers saying where the record came from, which group failed it and
why. Publishing waits for Kafka's acknowledgement (acks=all): only then may the runtime store
the original offset, so a record is never both uncommitted-nowhere and gone.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Message, Producer, TopicPartition

from consumers import messages
from consumers.errors import ConsumerError, DeadLetterError
from consumers.messages import Headers
from hookstream.kafka import ProducerConfig
from hookstream.kafka_access import ConnectionWatch, denied, explain, watched
from hookstream.settings import Settings

ORIGINAL_TOPIC = "dlq.original.topic"
ORIGINAL_PARTITION = "dlq.original.partition"
ORIGINAL_OFFSET = "dlq.original.offset"
ORIGINAL_TIMESTAMP = "dlq.original.timestamp"
GROUP = "dlq.group"
REASON = "dlq.reason"
ERROR_CLASS = "dlq.error.class"
ERROR_MESSAGE = "dlq.error.message"
ATTEMPTS = "dlq.attempts"
FAILED_AT = "dlq.failed_at"

# A replayed record names the one group that should process it and the DLQ record it came from.
REPLAY_GROUP = "hookstream.replay.group"
REPLAY_SOURCE = "hookstream.replay.source"
# A replayed record's Kafka timestamp is at least this long after the original record's; so the
# members read headers only of records stamped that long after their envelope's received_at.
# The producer stamps a record when it produces it, within a second or so of receiving it (the
# dedupe claim's wait): 5 s leaves room for a loaded host, and costs a replay at most a 5 s wait.
REPLAY_MIN_AGE_MS = 5000

_OWN_PREFIXES = ("dlq.", "hookstream.replay.")
_MAX_ERROR_MESSAGE = 500


def dead_letter_headers(
    msg: Message, group: str, error: BaseException, attempts: int, reason: str, now: datetime | None = None
) -> Headers:
    """The original headers (minus any earlier dlq.* story) followed by this failure's."""
    message = str(error) or type(error).__name__
    if len(message) > _MAX_ERROR_MESSAGE:
        message = message[: _MAX_ERROR_MESSAGE - 3] + "..."
    failed_at = (now or datetime.now(UTC)).isoformat(timespec="milliseconds")
    topic, partition, offset = messages.position(msg)
    own = {
        ORIGINAL_TOPIC: topic,
        ORIGINAL_PARTITION: str(partition),
        ORIGINAL_OFFSET: str(offset),
        ORIGINAL_TIMESTAMP: str(msg.timestamp()[1]),
        GROUP: group,
        REASON: reason,
        ERROR_CLASS: type(error).__name__,
        ERROR_MESSAGE: message,
        ATTEMPTS: str(attempts),
        FAILED_AT: failed_at,
    }
    return original_headers(messages.headers(msg)) + [(k, v.encode()) for k, v in own.items()]


def original_headers(headers: Headers) -> Headers:
    """Headers as the sender's side wrote them: without our dlq.* and replay headers."""
    return [(k, v) for k, v in headers if not k.startswith(_OWN_PREFIXES)]


class DeadLetterPublisher:
    """Publishes a group's failed records; one lazily created idempotent producer."""

    def __init__(self, settings: Settings, group: str, ack_timeout_s: float = 30.0) -> None:
        self._settings = settings
        self._group = group
        self._ack_timeout_s = ack_timeout_s
        self._producer: Producer | None = None

    def _client(self) -> Producer:
        if self._producer is None:
            config = ProducerConfig.from_settings(self._settings, client_id=f"hookstream-{self._group}-dlq")
            self._producer = Producer(config.as_librdkafka())
        return self._producer

    def publish(self, msg: Message, error: BaseException, attempts: int, reason: str) -> None:
        """Send `msg` to the DLQ and return only once Kafka has acknowledged it."""
        outcome: list[object] = []
        producer = self._client()
        producer.produce(
            self._settings.dlq_topic,
            value=msg.value(),
            key=msg.key(),
            headers=dead_letter_headers(msg, self._group, error, attempts, reason),  # type: ignore[arg-type]
            on_delivery=lambda err, _msg: outcome.append(err),
        )
        producer.flush(self._ack_timeout_s)
        where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
        if not outcome:
            raise DeadLetterError(
                f"{self._settings.dlq_topic} did not acknowledge {where} within {self._ack_timeout_s:.0f}s"
            )
        if outcome[0] is not None:
            raise DeadLetterError(f"{self._settings.dlq_topic} refused {where}: {outcome[0]}")

    def close(self) -> None:
        if self._producer is not None:
            if self._producer.flush(self._ack_timeout_s):
                # Never acknowledged: its original offset was not stored, so the record comes
                # back to the group; drop this copy rather than let it land later as a duplicate.
                self._producer.purge()
                self._producer.flush(0)
            self._producer = None


@dataclass(frozen=True)
class DeadLetter:
    """One record of the DLQ topic, read back."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Headers

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", "replace")
        return None

    @property
    def group(self) -> str | None:
        return self.header(GROUP)

    @property
    def event_id(self) -> str | None:
        return self.header("event_id")

    @property
    def original_timestamp_ms(self) -> int | None:
        raw = self.header(ORIGINAL_TIMESTAMP)
        return int(raw) if raw and raw.isdigit() else None

    @property
    def failed_at(self) -> datetime | None:
        raw = self.header(FAILED_AT)
        try:
            return datetime.fromisoformat(raw) if raw else None
        except ValueError:
            return None

    def summary(self) -> str:
        return "  ".join(
            [
                self.position,
                f"group={self.group or '-'}",
                f"reason={self.header(REASON) or '-'}",
                f"event_id={self.event_id or '-'}",
                f"error={self.header(ERROR_CLASS) or '-'}",
                f"failed_at={self.header(FAILED_AT) or '-'}",
                f"from={self.header(ORIGINAL_TOPIC)}[{self.header(ORIGINAL_PARTITION)}]@{self.header(ORIGINAL_OFFSET)}",
            ]
        )


class _Reader(Consumer):
    """A consumer that can say why Kafka refused it (`hookstream.kafka_access`)."""

    watch: ConnectionWatch


def _reader(settings: Settings) -> _Reader:
    """A consumer that reads by assignment and never commits: reading the DLQ changes nothing.
    Its group id is never joined, but its coordinator is looked up: ACLs grant DESCRIBE on the
    prefix hookstream-dlq-reader- (docs/security.md)."""
    conf, watch = watched(
        {
            **settings.kafka_common(),
            "group.id": f"hookstream-dlq-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    reader = _Reader(conf)
    reader.watch = watch
    return reader


def _from_message(msg: Message) -> DeadLetter:
    _, partition, offset = messages.position(msg)
    return DeadLetter(partition, offset, msg.key(), msg.value(), messages.headers(msg))


def _partitions(consumer: _Reader, settings: Settings) -> list[int]:
    try:
        topic = consumer.list_topics(settings.dlq_topic, timeout=10).topics.get(settings.dlq_topic)
    except KafkaException as exc:
        consumer.poll(0)  # hands librdkafka's log lines (why it was refused) to the watch
        what = f"cannot reach Kafka at {settings.kafka_bootstrap_servers}"
        raise ConsumerError(explain(exc.args[0], what, consumer.watch)) from exc
    if topic is not None and topic.error is not None:
        missing = denied(topic.error, "READ", f"topic {settings.dlq_topic}", consumer.watch.conf)
        if missing is not None:
            raise ConsumerError(missing)
    if topic is None or topic.error is not None or not topic.partitions:
        raise ConsumerError(
            f"DLQ topic {settings.dlq_topic} does not exist; create it with `hookstream topics create`"
        )
    return sorted(topic.partitions)


def read_dead_letters(settings: Settings, stall_timeout_s: float = 15.0) -> Iterator[DeadLetter]:
    """Every record in the DLQ topic as it is now, partition by partition in offset order."""
    consumer = _reader(settings)
    try:
        ends: dict[int, int] = {}
        for partition in _partitions(consumer, settings):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(settings.dlq_topic, partition), timeout=10
            )
            if high > low:
                ends[partition] = high
        if not ends:
            return
        consumer.assign([TopicPartition(settings.dlq_topic, p, OFFSET_BEGINNING) for p in ends])
        by_partition: dict[int, list[DeadLetter]] = {p: [] for p in ends}
        remaining = set(ends)
        stalled_at = time.monotonic() + stall_timeout_s
        while remaining:
            # consume() waits for a full batch or the timeout: keep the timeout short.
            batch = consumer.consume(500, timeout=0.2)
            if not batch and time.monotonic() > stalled_at:
                raise ConsumerError(f"reading {settings.dlq_topic} stalled for {stall_timeout_s:.0f}s")
            if batch:
                stalled_at = time.monotonic() + stall_timeout_s
            for msg in batch:
                if msg.error() is not None:
                    raise ConsumerError(f"reading {settings.dlq_topic}: {msg.error()}")
                letter = _from_message(msg)
                by_partition[letter.partition].append(letter)
                if letter.offset + 1 >= ends[letter.partition]:
                    remaining.discard(letter.partition)
        for partition in sorted(by_partition):
            yield from by_partition[partition]
    finally:
        consumer.close()


def read_dead_letter(settings: Settings, partition: int, offset: int, timeout_s: float = 15.0) -> DeadLetter:
    """The DLQ record at `partition:offset`."""
    consumer = _reader(settings)
    try:
        partitions = _partitions(consumer, settings)
        if partition not in partitions:
            raise ConsumerError(
                f"{settings.dlq_topic} has no partition {partition} (it has {len(partitions)}); "
                "see `hookstream dlq list`"
            )
        low, high = consumer.get_watermark_offsets(TopicPartition(settings.dlq_topic, partition), timeout=10)
        if not low <= offset < high:
            raise ConsumerError(
                f"{settings.dlq_topic} has no record at {partition}:{offset} "
                f"(partition {partition} holds offsets {low}..{high - 1}); see `hookstream dlq list`"
            )
        consumer.assign([TopicPartition(settings.dlq_topic, partition, offset)])
        msg = consumer.poll(timeout_s)
        if msg is None or msg.error() is not None:
            raise ConsumerError(
                f"could not read {settings.dlq_topic} {partition}:{offset}: {msg and msg.error()}"
            )
        return _from_message(msg)
    except KafkaException as exc:
        raise ConsumerError(f"could not read {settings.dlq_topic} {partition}:{offset}: {exc}") from exc
    finally:
        consumer.close()
