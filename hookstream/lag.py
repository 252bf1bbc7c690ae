"""How far behind each consumer group is, per partition, in messages and in seconds.

Lag counts from the committed offset, so it is what a restart would redo: for a group that
holds records until they are durable (the archiver, until its object is uploaded) it includes
records processed but not durable yet. Lag in seconds is the age of the record at the committed
offset (0 when the group is caught up). Reading that record's timestamp takes a
plain consumer that is assigned partitions by hand and never commits, so it never joins or
disturbs the group it measures.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from hookstream.admin import admin_client
from hookstream.offsets import OffsetsError, Partition, committed_offsets, list_groups, watermarks
from hookstream.settings import Settings

READ_TIMEOUT_S = 10.0

# (partition, offset) -> when that record was written, in epoch seconds.
RecordTimes = dict[tuple[Partition, int], float]


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None  # None: the group never committed here (it starts at the first record)
    end: int
    lag_messages: int
    lag_seconds: float | None  # None: the oldest unprocessed record could not be read in time


@dataclass(frozen=True)
class GroupLag:
    group: str
    partitions: tuple[PartitionLag, ...]

    @property
    def total_messages(self) -> int:
        return sum(p.lag_messages for p in self.partitions)

    def as_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "total_lag_messages": self.total_messages,
            "partitions": [asdict(p) for p in self.partitions],
        }


def measure(settings: Settings, groups: list[str] | None = None, now: float | None = None) -> list[GroupLag]:
    """Lag of the named groups (default: every group that has committed something)."""
    admin = admin_client(settings)
    names = groups if groups is not None else list_groups(admin)
    existing = _partitions_by_topic(admin)
    every = [(t, n) for t, numbers in existing.items() if not t.startswith("__") for n in numbers]
    committed = {group: committed_offsets(admin, group, every) for group in names}
    unknown = [group for group in names if not committed[group]]
    if groups is not None and unknown:
        raise OffsetsError(
            f"group(s) {', '.join(unknown)} have committed no offsets; `hookstream lag` lists every group"
        )
    # A group counts every partition of the topics it commits on, including ones it never reached.
    topics = {group: sorted({t for t, _ in committed[group]} & existing.keys()) for group in names}
    scope = {group: [(t, n) for t in topics[group] for n in existing[t]] for group in names}
    marks = watermarks(admin, {p for partitions in scope.values() for p in partitions})
    behind = {
        (p, offset)
        for group in names
        for p in scope[group]
        if (offset := next_offset(committed[group].get(p), marks[p][0])) < marks[p][1]
    }
    stamps = record_timestamps(settings, behind)
    now = time.time() if now is None else now
    rows = {
        group: tuple(
            partition_lag(group, p, committed[group].get(p), marks[p], stamps, now) for p in scope[group]
        )
        for group in names
    }
    return [GroupLag(group, rows[group]) for group in names if rows[group]]


def next_offset(committed: int | None, start: int) -> int:
    """The next record a group will process: its committed offset, or the first one still retained."""
    return start if committed is None else max(committed, start)


def lag_at(
    next_to_process: int, end: int, oldest_stamp: float | None, now: float
) -> tuple[int, float | None]:
    """Lag in messages and in seconds of a partition whose next record to process is at
    `next_to_process`, given the timestamp (epoch seconds) of that record when known.

    The one definition of lag: `hookstream lag` (from the committed offset) and each member's
    gauges (from the position it processes next) both read it from here.
    """
    if next_to_process >= end:
        return 0, 0.0
    return end - next_to_process, None if oldest_stamp is None else max(0.0, now - oldest_stamp)


def partition_lag(
    group: str,
    p: Partition,
    committed: int | None,
    marks: tuple[int, int],
    stamps: RecordTimes,
    now: float,
) -> PartitionLag:
    start, end = marks
    offset = next_offset(committed, start)
    messages, seconds = lag_at(offset, end, stamps.get((p, offset)), now)
    return PartitionLag(group, p[0], p[1], committed, end, messages, seconds)


def _partitions_by_topic(admin: AdminClient) -> dict[str, list[int]]:
    try:
        topics = admin.list_topics(timeout=READ_TIMEOUT_S).topics
    except KafkaException as exc:
        raise OffsetsError(f"cannot read the cluster metadata: {exc.args[0].str()}") from exc
    return {name: sorted(t.partitions) for name, t in topics.items() if t.error is None and t.partitions}


def record_timestamps(settings: Settings, wanted: set[tuple[Partition, int]]) -> RecordTimes:
    """The timestamp (epoch seconds) of the record at each (partition, offset), read by hand.

    Groups at different offsets of one partition need one read each; reads that do not finish
    within READ_TIMEOUT_S are left out (their lag in seconds is then unknown).
    """
    found: RecordTimes = {}
    if not wanted:
        return found
    consumer = Consumer(
        {
            **settings.kafka_common(),
            # assign() never joins this group and nothing is committed, so it never exists on the broker.
            "group.id": "hookstream-lag-reader",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        for (topic, partition), offset in sorted(wanted):
            consumer.assign([TopicPartition(topic, partition, offset)])
            stamp = _first_timestamp(consumer, topic, partition, offset)
            if stamp is not None:
                found[((topic, partition), offset)] = stamp
    except KafkaException as exc:
        raise OffsetsError(f"cannot read record timestamps: {exc.args[0].str()}") from exc
    finally:
        consumer.close()
    return found


def _first_timestamp(consumer: Consumer, topic: str, partition: int, offset: int) -> float | None:
    deadline = time.monotonic() + READ_TIMEOUT_S
    while time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None:
            continue
        error = msg.error()
        if error is not None:
            raise OffsetsError(f"cannot read {topic}[{partition}] at offset {offset}: {error.str()}")
        kind, millis = msg.timestamp()
        return None if kind == TIMESTAMP_NOT_AVAILABLE else millis / 1000.0
    return None
