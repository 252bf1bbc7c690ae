"""Staying in the group while a batch is slow: wait between attempts with every partition
paused, polling all the while, so a slow record never exceeds max.poll.interval.ms."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from consumers import messages

TopicPartitionKey = tuple[str, int]


class Interrupted(Exception):
    """Stop processing the batch here: the member is shutting down."""


class PartitionGone(Exception):
    """The record's partition was revoked while it was waited on: its new owner takes it."""


class Pauser:
    def __init__(
        self,
        consumer: Callable[[], Consumer | None],
        keepalive_s: float,
        stopping: Callable[[], bool],
        gone: set[TopicPartitionKey],
    ) -> None:
        self._consumer = consumer
        # Poll at least this often while a batch is slow, well inside max.poll.interval.ms.
        self._keepalive_s = keepalive_s
        self._stopping = stopping
        self._gone = gone  # partitions revoked during the current batch (owned by the member)
        self.paused = False
        self.last_poll = 0.0

    def polled(self) -> None:
        self.last_poll = time.monotonic()

    def keep_alive_if_due(self) -> None:
        if time.monotonic() - self.last_poll > self._keepalive_s:
            self._poll(0)

    def wait(self, seconds: float, key: TopicPartitionKey) -> None:
        """Sleep between attempts while polling (paused); raises Interrupted or PartitionGone."""
        deadline = time.monotonic() + seconds
        while True:
            if self._stopping():
                raise Interrupted
            if key in self._gone:
                raise PartitionGone
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._poll(min(remaining, 0.5))

    def _poll(self, timeout_s: float) -> None:
        consumer = self._consumer()
        assert consumer is not None
        if not self.paused:
            consumer.pause(consumer.assignment())
            self.paused = True
        msg = consumer.poll(timeout_s)  # serves rebalance callbacks; paused, so no records
        self.polled()
        if msg is not None and msg.error() is None:
            # A partition assigned mid-batch before it could be paused: read this record later.
            consumer.seek(TopicPartition(*messages.position(msg)))

    def resume(self) -> None:
        consumer = self._consumer()
        if self.paused and consumer is not None:
            consumer.resume(consumer.assignment())
            self.paused = False
