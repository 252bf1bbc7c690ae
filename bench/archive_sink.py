"""The archiver's sink side on S3: events/s against a plain loop, in the same run (issue 10's 0.8x).

- archiver: a group member (`Member` + `Archiver`) on a fresh consumer group over a pre-filled
  topic, writing to a bucket of a local s3proxy: decode, event_id check in the state store (in
  a child process), objects rolled and uploaded (in another), offsets committed after each upload.
- plain loop: a confluent-kafka consumer over the same topic that writes the same Avro blocks
  (the same record bytes, the same roll points) and puts the same objects with boto3.

Both are timed from their first record to their last one processed (objects rolled on the way are
uploaded inside that window; the last open object of each partition is left out on both sides).
The archiver's window starts once its first batch is processed and ends once its last one is,
before that batch's records join their objects: about one batch in its favour at each end (1%
of the bench's 100,000 events).
Rounds alternate the two sides; the median round counts. It also reports the objects per hour
that the roll settings give at the archiver's rate, and, with `--rss-events`, the archiver's peak
RSS (its process's and its child processes') while a million event_ids go through it (no Kafka:
records are handed to it directly, in batches, as the runtime does).

    python -m bench.archive_sink [--bootstrap HOST:PORT] [--events N] [--rounds R] [--rss-events N]

Without `--bootstrap` a local Kafka broker is started for the run; s3proxy always is.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import boto3
import fastavro
import psutil
from confluent_kafka import Consumer
from prometheus_client import REGISTRY

from bench.groups import envelope, prefill
from consumers.archive.container import OpenObject, datum
from consumers.archive.layout import RollPolicy, archive_schema, object_key
from consumers.archiver import Archiver
from consumers.handler import Record
from consumers.runtime import Member
from hookstream.admin import TopicSpec, admin_client, ensure_topics
from hookstream.kafka import ConsumerConfig
from hookstream.settings import Settings
from hookstream_dev.kafka import LocalCluster
from hookstream_dev.process import free_port_block
from hookstream_dev.s3proxy import S3Proxy
from schemas import codec

PARTITIONS = 4
OBJECT_BYTES = 1024 * 1024
BUCKET = "bench-archive"


@dataclass(frozen=True)
class SideRate:
    events: int
    seconds: float
    events_per_s: float
    objects: int


@dataclass(frozen=True)
class ArchiveSinkResult:
    events: int
    rounds: int
    archiver_eps: float  # median round
    plain_eps: float  # median round
    ratio: float  # median of the rounds' archiver/plain ratios
    ratios: tuple[float, ...]
    max_bytes: int
    max_age_s: float
    objects_per_hour_per_partition: float  # at the archiver's median rate, from the roll rules
    rss_events: int
    rss_mb: tuple[float, ...]  # the archiver's RSS, its children's included, after each tenth


def _processed(group: str) -> float:
    return REGISTRY.get_sample_value("hookstream_consumer_messages_processed_total", {"group": group}) or 0.0


def run_archiver(settings: Settings, events: int) -> SideRate:
    group = f"bench-archiver-{uuid.uuid4().hex[:8]}"
    member = Member(settings, group, Archiver(settings), lag_interval_s=3600)
    thread = threading.Thread(target=member.run, daemon=True)
    thread.start()
    first_at = 0.0
    deadline = time.monotonic() + 600
    while _processed(group) < events and time.monotonic() < deadline:
        if not first_at and _processed(group) > 0:
            first_at = time.perf_counter()
        time.sleep(0.02)
    elapsed = time.perf_counter() - first_at
    member.stop()
    thread.join(120)
    done = int(_processed(group))
    return SideRate(done, round(elapsed, 3), round(done / elapsed, 1), _count(settings))


def run_plain(settings: Settings, events: int) -> SideRate:
    """Consume, write the same Avro blocks, put the same objects with boto3: nothing else."""
    s3 = boto3.client("s3")
    prefix = (settings.archive_url or "").removeprefix(f"s3://{BUCKET}/") + "/"
    parsed = fastavro.parse_schema(archive_schema())
    policy = RollPolicy(settings.archive_max_bytes, int(settings.archive_max_age_s * 1000))
    consumer = Consumer(
        {
            **ConsumerConfig.from_settings(settings, f"bench-plain-{uuid.uuid4().hex[:8]}").as_librdkafka(),
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([settings.topic])
    open_objects: dict[int, OpenObject] = {}
    seen, first_at, puts = 0, 0.0, 0
    try:
        while seen < events:
            for msg in consumer.consume(settings.consumer_batch_size, timeout=1.0):
                if msg.error() is not None:
                    continue
                if not seen:
                    first_at = time.perf_counter()
                seen += 1
                value = msg.value() or b""
                partition, offset, ts = msg.partition() or 0, msg.offset() or 0, msg.timestamp()[1]
                record = Record(codec.decode(value), settings.topic, partition, offset, ts, value)
                current = open_objects.get(partition)
                if current is not None and policy.rolls_before(current.first_timestamp_ms, current.size, ts):
                    s3.put_object(Bucket=BUCKET, Key=prefix + current.key, Body=current.encode())
                    puts += 1
                    current = None
                if current is None:
                    key = object_key(settings.topic, partition, offset, ts)
                    current = open_objects[partition] = OpenObject(key, record)
                current.add(offset, datum(record, parsed))
        elapsed = time.perf_counter() - first_at
    finally:
        consumer.close()
    return SideRate(seen, round(elapsed, 3), round(seen / elapsed, 1), puts)


def _count(settings: Settings) -> int:
    prefix = (settings.archive_url or "").removeprefix(f"s3://{BUCKET}/") + "/"
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return sum(len(page.get("Contents", [])) for page in pages)


def rss_over(events: int, settings: Settings) -> tuple[float, ...]:
    """The RSS of the process and of the children the archiver started (claims, uploads) after
    each tenth of `events` records handed to an archiver on S3."""
    me = psutil.Process()
    others = {child.pid for child in me.children(recursive=True)}  # s3proxy's: not the archiver's
    archiver = Archiver(settings)
    base = codec.Envelope(
        event_id="",
        provider="fastio",
        event_type="workspace_storage_file_added",
        workspace_id="ws-1",
        payload=b'{"name": "report.pdf"}',
        received_at=codec.utc_now(),
    )
    samples = []
    processed: dict[int, int] = {}
    start_ms = int(time.time() * 1000)
    archiver.assigned(list(range(PARTITIONS)))
    archiver.committed({p: p for p in range(PARTITIONS)})  # record n is partition n % 4's, at offset n
    batch: list[Record] = []
    for n in range(events):
        partition = n % PARTITIONS
        event = replace(base, event_id=f"evt-{n}")
        batch.append(Record(event, settings.topic, partition, n, start_ms + n, codec.encode(event)))
        processed[partition] = n + 1
        if len(batch) == 500:  # as the runtime hands batches over, then stores and commits
            archiver.start_batch(batch)
            for record in batch:
                archiver.handle(record)
            archiver.committed(archiver.pre_commit(processed))
            batch = []
        if n % (events // 10) == events // 10 - 1:
            mine = [me, *(child for child in me.children(recursive=True) if child.pid not in others)]
            samples.append(round(sum(process.memory_info().rss for process in mine) / 2**20, 1))
    archiver.close()
    return tuple(samples)


@contextmanager
def _broker(bootstrap: str | None, home: Path) -> Iterator[str]:
    if bootstrap:
        yield bootstrap
        return
    cluster = LocalCluster(home / "kafka", nodes=1, base_port=free_port_block(2))
    cluster.start()
    try:
        yield cluster.bootstrap_servers
    finally:
        cluster.stop()


def _rounds(base: Settings, events: int, rounds: int) -> tuple[list[float], list[float], list[float]]:
    archiver_rates, plain_rates, ratios = [], [], []
    for n in range(rounds):
        here = replace(base, data_dir=base.data_dir / f"round-{n}")
        a = run_archiver(replace(here, archive_url=f"s3://{BUCKET}/round-{n}-archiver"), events)
        p = run_plain(replace(here, archive_url=f"s3://{BUCKET}/round-{n}-plain"), events)
        archiver_rates.append(a.events_per_s)
        plain_rates.append(p.events_per_s)
        ratios.append(round(a.events_per_s / p.events_per_s, 3))
        print(json.dumps({"round": n, "archiver": asdict(a), "plain": asdict(p)}), flush=True)
    return archiver_rates, plain_rates, ratios


def run(bootstrap: str | None, events: int, rounds: int, rss_events: int) -> ArchiveSinkResult:
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp:
        home = Path(tmp)
        s3proxy = S3Proxy(home / "s3")
        s3proxy.start()
        try:
            os.environ.update(s3proxy.environment())  # boto3's standard configuration, as in production
            boto3.client("s3").create_bucket(Bucket=BUCKET)
            with _broker(bootstrap, home) as servers:
                topic = f"bench-archive-{uuid.uuid4().hex[:8]}"
                base = replace(
                    Settings.from_env({}),
                    kafka_bootstrap_servers=servers,
                    topic=topic,
                    dlq_topic=f"{topic}-dlq",
                    data_dir=home / "data",
                    metrics_port=0,
                    # Objects roll by size inside the timed window, so both sides pay for uploads.
                    archive_max_bytes=OBJECT_BYTES,
                )
                specs = [TopicSpec(topic, PARTITIONS), TopicSpec(base.dlq_topic, 1)]
                ensure_topics(admin_client(base), specs)
                prefill(servers, topic, events, "archive")
                archiver_rates, plain_rates, ratios = _rounds(base, events, rounds)
            rss = rss_over(rss_events, replace(base, archive_url=f"s3://{BUCKET}/rss")) if rss_events else ()
        finally:
            s3proxy.stop()
    archiver_eps = statistics.median(archiver_rates)
    return ArchiveSinkResult(
        events=events,
        rounds=rounds,
        archiver_eps=archiver_eps,
        plain_eps=statistics.median(plain_rates),
        ratio=statistics.median(ratios),
        ratios=tuple(ratios),
        max_bytes=Settings.archive_max_bytes,
        max_age_s=Settings.archive_max_age_s,
        # At the defaults (64 MiB, 60 s), not the bench's small objects.
        objects_per_hour_per_partition=objects_per_hour(Settings(), archiver_eps / PARTITIONS),
        rss_events=rss_events,
        rss_mb=rss,
    )


def objects_per_hour(settings: Settings, events_per_s_per_partition: float) -> float:
    """Objects one partition gets per hour at a steady rate: whichever roll rule comes first."""
    record_bytes = len(envelope("size", 0)[1]) + 6  # the position appended to each record
    by_size_s = settings.archive_max_bytes / (record_bytes * events_per_s_per_partition)
    return round(3600 / min(by_size_s, settings.archive_max_age_s), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bootstrap", default=None, help="Kafka to use (default: start a local broker)")
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rss-events", type=int, default=0, help="also measure RSS over this many events")
    args = parser.parse_args()
    result = run(args.bootstrap, args.events, args.rounds, args.rss_events)
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
