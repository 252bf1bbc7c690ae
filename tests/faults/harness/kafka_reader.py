"""What Kafka itself holds: every record of a topic, a group's lag, partitions' in-sync replicas."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]

    def header(self, name: str) -> str | None:
        raw = self.headers.get(name)
        return raw.decode(errors="replace") if raw is not None else None


def read_all(bootstrap: str, topic: str, timeout_s: float = 60.0) -> list[Record]:
    """Every record from the start of each partition to its high watermark as of now."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"faults-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
        ends: dict[int, int] = {}
        assignment = []
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
            if high > low:
                ends[p] = high
                assignment.append(TopicPartition(topic, p, low))
        consumer.assign(assignment)
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s
        pending = dict(ends)
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic}: partitions {sorted(pending)} not read to the end")
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error() is not None:
                continue  # partition EOF and transient errors: keep reading until the ends
            p, off = msg.partition() or 0, msg.offset() or 0
            pairs: list[tuple[str, bytes]] = list(msg.headers() or [])  # type: ignore[arg-type]
            headers = dict(pairs)
            records.append(Record(p, off, msg.key(), msg.value(), headers))
            if off + 1 >= pending.get(p, 0):
                pending.pop(p, None)
        return records
    finally:
        consumer.close()


def event_ids(records: list[Record]) -> Counter[str]:
    return Counter(e for r in records if (e := r.header("event_id")))


def group_lag(bootstrap: str, group: str, topic: str, timeout_s: float = 30.0) -> dict[int, int]:
    """Messages not yet committed by `group`, per partition of `topic`."""
    # The group's own id on a consumer that never subscribes: it reads the group's offsets without
    # joining (AdminClient.list_consumer_group_offsets can crash: see hookstream.offsets).
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        meta = probe.list_topics(topic, timeout=timeout_s).topics[topic]
        partitions = [TopicPartition(topic, p) for p in meta.partitions]
        committed = {tp.partition: tp.offset for tp in probe.committed(partitions, timeout=timeout_s)}
        lag = {}
        for p in meta.partitions:
            low, high = probe.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)
            done = committed.get(p, -1)
            lag[p] = high - (done if done >= 0 else low)
        return lag
    finally:
        probe.close()


def wait_in_sync(bootstrap: str, topics: list[str], replicas: int = 3, timeout_s: float = 120.0) -> None:
    """Until every partition of `topics` has `replicas` in-sync replicas again."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout_s
    short: list[str] = []
    while time.monotonic() < deadline:
        try:
            meta = admin.list_topics(timeout=10)
        except KafkaException:
            time.sleep(1)
            continue
        short = [
            f"{t}[{p}] isr={part.isrs}"
            for t in topics
            for p, part in (meta.topics[t].partitions.items() if t in meta.topics else [])
            if len(part.isrs) < replicas
        ]
        if not short:
            return
        time.sleep(1)
    raise TimeoutError(f"replicas not back in sync after {timeout_s:.0f}s: {short[:5]}")


KafkaHeaders = list[tuple[str, str | bytes | None]]


def kafka_headers(pairs: list[tuple[str, bytes]]) -> KafkaHeaders:
    """Envelope headers in the type confluent-kafka's `produce` declares."""
    headers: KafkaHeaders = [(name, value) for name, value in pairs]
    return headers
