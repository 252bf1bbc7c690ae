"""Prometheus metrics of one group member (names are a contract with dashboards and alerts).

Each member is its own process with its own HTTP endpoint, so the default registry is right
here (the producer's gunicorn workers need multiprocess mode; consumers do not). Label
children are bound once per member, so the hot loop never looks labels up.
"""

from __future__ import annotations

import contextlib
from bisect import bisect_left

from prometheus_client import Counter, Gauge, Histogram, start_http_server

CONSUMED = Counter("hookstream_consumer_messages_consumed_total", "Records polled from Kafka.", ["group"])
PROCESSED = Counter(
    "hookstream_consumer_messages_processed_total",
    "Records whose processing finished (handled, dead-lettered or skipped).",
    ["group"],
)
RETRIES = Counter(
    "hookstream_consumer_retries_total", "Handler attempts repeated after a transient error.", ["group"]
)
DEAD_LETTERED = Counter(
    "hookstream_consumer_dead_lettered_total",
    "Records sent to the DLQ, by reason (poison, permanent, retries_exhausted).",
    ["group", "reason"],
)
PROCESSING = Histogram(
    "hookstream_consumer_processing_duration_seconds",
    "Handler time per record, retries included.",
    ["group"],
    buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
)
END_TO_END = Histogram(
    "hookstream_consumer_end_to_end_latency_seconds",
    "From the producer receiving the webhook to the record's effect being durable here.",
    ["group"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
LAG_MESSAGES = Gauge(
    "hookstream_consumer_lag_messages",
    "High watermark minus the next offset to process, per assigned partition.",
    ["group", "topic", "partition"],
)
LAG_SECONDS = Gauge(
    "hookstream_consumer_lag_seconds",
    "Age of the oldest unprocessed record per assigned partition; 0 when caught up.",
    ["group", "topic", "partition"],
)
NOT_DURABLE = Gauge(
    "hookstream_consumer_not_durable_messages",
    "Records processed but not yet durable (held by the handler, e.g. in an open archive file), "
    "per assigned partition: their offsets are not committed yet.",
    ["group", "topic", "partition"],
)
ARCHIVE_UPLOADS = Counter(
    "hookstream_archive_uploads_total",
    "Archive objects the archiver tried to upload, by result (ok, failed: kept and tried again).",
    ["result"],
)
REBALANCES = Counter(
    "hookstream_consumer_rebalances_total",
    "Partition assignment changes (assign|revoke|lost).",
    ["group", "kind"],
)
LAST_COMMIT = Gauge(
    "hookstream_consumer_last_commit_timestamp_seconds", "When offsets were last committed.", ["group"]
)
CIRCUIT_OPEN = Gauge(
    "hookstream_consumer_circuit_open", "1 when the circuit breaker stopped this member.", ["group"]
)


class HistogramBatch:
    """Observations of one histogram child, counted locally and added to it once per batch.

    `Histogram.observe` takes two locks per call, a cost the hot loop pays per record; this
    adds the same bucket counts and sum under one lock per touched bucket, once per batch.
    It reads the child's bucket bounds and values (prometheus_client internals, stable for
    years; the unit tests compare the result with plain `observe`).
    """

    def __init__(self, child: Histogram) -> None:
        self._child = child
        self._bounds: list[float] = child._upper_bounds  # ends with +Inf: every value fits
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0

    def observe(self, value: float) -> None:
        self._counts[bisect_left(self._bounds, value)] += 1  # the first bucket with value <= bound
        self._sum += value

    def publish(self) -> None:
        """Add what was observed since the last publish to the histogram."""
        counts = self._counts
        for i, count in enumerate(counts):
            if count:
                self._child._buckets[i].inc(count)
                counts[i] = 0
        if self._sum:
            self._child._sum.inc(self._sum)
            self._sum = 0.0


class MemberMetrics:
    """The metric children of one group, bound once."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.consumed = CONSUMED.labels(group)
        self.processed = PROCESSED.labels(group)
        self.retries = RETRIES.labels(group)
        self.processing = HistogramBatch(PROCESSING.labels(group))
        self.end_to_end = HistogramBatch(END_TO_END.labels(group))
        self.last_commit = LAST_COMMIT.labels(group)
        self.circuit_open = CIRCUIT_OPEN.labels(group)
        self.circuit_open.set(0)

    def dead_lettered(self, reason: str) -> None:
        DEAD_LETTERED.labels(self.group, reason).inc()

    def rebalance(self, kind: str) -> None:
        REBALANCES.labels(self.group, kind).inc()

    def set_lag(self, topic: str, partition: int, messages: int, seconds: float) -> None:
        LAG_MESSAGES.labels(self.group, topic, str(partition)).set(messages)
        LAG_SECONDS.labels(self.group, topic, str(partition)).set(seconds)

    def set_not_durable(self, topic: str, partition: int, messages: int) -> None:
        NOT_DURABLE.labels(self.group, topic, str(partition)).set(messages)

    def forget_partition(self, topic: str, partition: int) -> None:
        """A partition that left this member must not keep reporting its last lag."""
        for gauge in (LAG_MESSAGES, LAG_SECONDS, NOT_DURABLE):
            with contextlib.suppress(KeyError):  # never reported for it
                gauge.remove(self.group, topic, str(partition))


def serve(port: int) -> None:
    """Expose /metrics on `port` (0 disables it: tests running many members in one process)."""
    if port:
        start_http_server(port)
