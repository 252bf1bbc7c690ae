"""The one broker every stage shares, and what the broker alone can take.

A single-node `LocalCluster` in the run's temporary folder with the default heap: fresh for
each run, so no earlier data, offsets or groups colour the numbers. Every topic has 8
partitions and replication factor 1, and every producer in the run uses `acks=all`.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from bench.servers import cpu_seconds
from hookstream.admin import TopicSpec, ensure_topics
from hookstream_dev.kafka import DEFAULT_JAR_CACHE, LocalCluster, resolve_jars
from hookstream_dev.process import free_port_block, java_binary

PARTITIONS = 8


class BenchBroker:
    def __init__(self, home: Path) -> None:
        self.cluster = LocalCluster(home, nodes=1, base_port=free_port_block(2))

    def __enter__(self) -> BenchBroker:
        self.cluster.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.cluster.stop()

    @property
    def bootstrap(self) -> str:
        return self.cluster.bootstrap_servers

    def cpu_seconds(self) -> float:
        pid = self.cluster.pid(1)
        return cpu_seconds(pid) if pid else 0.0

    def create_topic(self, name: str) -> str:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        ensure_topics(admin, [TopicSpec(name, PARTITIONS, replication_factor=1)])
        return name

    def record_count(self, topic: str) -> int:
        """Records the topic holds: the sum of its partitions' high watermarks."""
        consumer = Consumer({"bootstrap.servers": self.bootstrap, "group.id": "bench-watermarks"})
        try:
            return sum(
                consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in range(PARTITIONS)
            )
        finally:
            consumer.close()


@dataclass(frozen=True)
class PerfResult:
    records: int
    records_per_s: float
    mb_per_s: float
    avg_latency_ms: float
    max_latency_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


_PERF_LINE = re.compile(
    r"(?P<records>\d+) records sent, (?P<rps>[\d.]+) records/sec \((?P<mbps>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, "
    r"(?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th"
)


def parse_perf_output(text: str) -> PerfResult:
    """ProducerPerformance's final summary (the only line with percentiles)."""
    matches = list(_PERF_LINE.finditer(text))
    if not matches:
        raise RuntimeError(f"ProducerPerformance printed no summary; output ends: {text.strip()[-400:]!r}")
    m = matches[-1]
    return PerfResult(
        records=int(m["records"]),
        records_per_s=float(m["rps"]),
        mb_per_s=float(m["mbps"]),
        avg_latency_ms=float(m["avg"]),
        max_latency_ms=float(m["max"]),
        p50_ms=float(m["p50"]),
        p95_ms=float(m["p95"]),
        p99_ms=float(m["p99"]),
    )


def producer_performance(bootstrap: str, topic: str, records: int, record_size: int) -> PerfResult:
    """Kafka's own load tool at full speed with `acks=all`: the broker's limit on this box."""
    libs = resolve_jars(DEFAULT_JAR_CACHE)
    cmd = [
        java_binary(), "-Xmx512m", "-cp", f"{libs}/*", "org.apache.kafka.tools.ProducerPerformance",
        "--topic", topic, "--num-records", str(records), "--record-size", str(record_size),
        "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}", "acks=all",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ProducerPerformance exited {done.returncode}: {done.stderr.strip()[-400:]}")
    return parse_perf_output(done.stdout)
