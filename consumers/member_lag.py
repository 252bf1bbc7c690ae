"""A member's lag gauges: per assigned partition, in messages and in seconds, every few seconds.

The next record to process is the batch's first one for that partition (its age is exact), or
else the consumer's position (its age is then taken from the last record seen there: an upper
bound until the next record is in hand). The arithmetic is `hookstream.lag.lag_at`, the same
`hookstream lag` uses from the committed offset.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from consumers import messages
from consumers.metrics import MemberMetrics
from hookstream.lag import lag_at

TopicPartitionKey = tuple[str, int]


class MemberLag:
    def __init__(self, metrics: MemberMetrics, interval_s: float) -> None:
        self._metrics = metrics
        self._interval_s = interval_s
        self._next_at = 0.0
        # Timestamp (epoch seconds) of the last record seen first in a batch, per partition.
        self._seen_stamp: dict[TopicPartitionKey, float] = {}

    def refresh(self, consumer: Consumer | None, batch: list[Message]) -> None:
        now = time.monotonic()
        if now < self._next_at or consumer is None:
            return
        self._next_at = now + self._interval_s
        first: dict[TopicPartitionKey, int] = {}
        for msg in batch:
            if msg.error() is None:
                topic, partition, offset = messages.position(msg)
                if (topic, partition) not in first:
                    first[(topic, partition)] = offset
                    self._seen_stamp[(topic, partition)] = msg.timestamp()[1] / 1000
        assignment = consumer.assignment()
        resume = _resume_offsets(consumer, [tp for tp in assignment if (tp.topic, tp.partition) not in first])
        wall = time.time()
        for tp in assignment:
            key = (tp.topic, tp.partition)
            _, high = consumer.get_watermark_offsets(tp, cached=True)
            next_offset = first[key] if key in first else resume.get(key, -1)
            if high < 0 or next_offset < 0:
                continue  # nothing fetched for it yet: no honest number to report
            behind, seconds = lag_at(next_offset, high, self._seen_stamp.get(key, wall), wall)
            self._metrics.set_lag(tp.topic, tp.partition, behind, seconds or 0.0)

    def forget(self, key: TopicPartitionKey) -> None:
        self._seen_stamp.pop(key, None)


def _resume_offsets(consumer: Consumer, partitions: list[TopicPartition]) -> dict[TopicPartitionKey, int]:
    """Where processing continues in each of `partitions` (none has a record in hand)."""
    if not partitions:
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
