"""Consumer groups: events/s over a pre-filled topic, and webhook -> indexed latency.

Each group member (`hookstream consume <group>`) runs as its own process on a fresh group
(a fresh broker), so it reads the pre-filled topic from the start. Its rate comes from its
own `hookstream_consumer_messages_processed_total`, sampled every 0.1 s, from the first
processed record to the last; the raw poll loop (`bench.rawloop`) is timed the same way.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench import launch, payloads, promtext
from bench.apps.signature import PATH
from bench.config import WorkerSetting
from bench.ingest import Workspace, load
from bench.results import EndToEnd, LoopRate
from bench.servers import Server, running
from hookstream.kafka import ProducerConfig
from hookstream.settings import KafkaConf, Settings
from hookstream_dev.process import free_port_block
from schemas.codec import Envelope, encode, utc_now

GROUPS = ("indexer", "notifier", "archiver")
PROCESSED = "hookstream_consumer_messages_processed_total"
END_TO_END = "hookstream_consumer_end_to_end_latency_seconds"
SAMPLE_S = 0.1


KafkaHeaders = list[tuple[str, str | bytes | None]]


def envelope(prefix: str, n: int) -> tuple[bytes, bytes, KafkaHeaders]:
    """Key, value and headers of the record Hookstream writes for delivery `n`."""
    raw = payloads.body(prefix, n)
    doc = json.loads(raw)
    env = Envelope(
        event_id=doc["event_id"],
        provider="fastio",
        event_type=doc["event"],
        workspace_id=doc["workspace_id"],
        payload=raw,
        received_at=utc_now(),
        object_id=doc["object_id"],
        signature_scheme="hex",
    )
    headers: KafkaHeaders = list(env.headers())
    return env.partition_key.encode(), encode(env), headers


def record_size() -> int:
    return len(envelope("size", 0)[1])


def prefill(bootstrap: str, topic: str, count: int, prefix: str) -> float:
    """Write `count` envelopes with Hookstream's own producer settings; returns seconds taken."""
    from confluent_kafka import Producer

    producer = Producer(_producer_conf(bootstrap))
    started = time.perf_counter()
    for n in range(count):
        key, value, headers = envelope(prefix, n)
        while True:
            try:
                producer.produce(topic, value, key, headers=headers)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError(f"pre-filling {topic}: records still undelivered after 120s")
    return time.perf_counter() - started


def acked_one_by_one(bootstrap: str, topic: str, seconds: float, prefix: str, producers: int = 4) -> int:
    """Records written one at a time, each waited for, from `producers` clients at once for
    `seconds`: small produce requests, as webhooks make them; returns how many were written."""
    from confluent_kafka import Producer

    conf = _producer_conf(bootstrap)
    deadline = time.monotonic() + seconds

    def write(index: int) -> int:
        producer = Producer(conf)
        written = 0
        while time.monotonic() < deadline:
            key, value, headers = envelope(f"{prefix}-{index}", written)
            producer.produce(topic, value, key, headers=headers)
            if producer.flush(30):
                raise RuntimeError(f"warming {topic}: a record was not acknowledged within 30s")
            written += 1
        return written

    with ThreadPoolExecutor(producers) as pool:  # a client's failure is raised here, not lost
        return sum(pool.map(write, range(producers)))


def _producer_conf(bootstrap: str) -> KafkaConf:
    """Hookstream's own producer settings, against the bench broker."""
    return ProducerConfig.from_settings(Settings(kafka_bootstrap_servers=bootstrap)).as_librdkafka()


def raw_loop(bootstrap: str, topic: str, count: int, decode: bool = False) -> LoopRate:
    group = "bench-rawloop-decode" if decode else "bench-rawloop"
    cmd = [
        sys.executable,
        "-m",
        "bench.rawloop",
        bootstrap,
        topic,
        group,
        str(count),
        *(["decode"] if decode else []),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False, cwd=launch.REPO)
    if done.returncode != 0:
        raise RuntimeError(f"raw poll loop failed: {done.stderr.strip()[-400:]}")
    found = json.loads(done.stdout.strip().splitlines()[-1])
    name = "raw poll loop + Avro decode" if decode else "raw poll loop"
    return LoopRate(name, found["events"], found["seconds"], found["events_per_s"], found["peak_rss_mb"])


def _processed(metrics_url: str, group: str) -> float:
    try:
        return promtext.total(promtext.scrape(metrics_url), PROCESSED, group=group)
    except OSError:
        return 0.0


@dataclass(frozen=True)
class Progress:
    first_at: float  # perf_counter when a processed record was first seen; 0.0 if never
    last_at: float  # perf_counter of the last sample
    processed: float  # records processed between those two samples
    reached: bool  # the target was reached (else a time limit ended the wait)

    @property
    def rate(self) -> float:
        elapsed = self.last_at - self.first_at
        return self.processed / elapsed if self.first_at and elapsed > 0 else 0.0


def wait_processed(
    metrics_url: str, group: str, target: float, start_timeout_s: float, run_cap_s: float = 600.0
) -> Progress:
    """Sample the member's processed counter until it reaches `target`, or until no record
    came within `start_timeout_s`, or `run_cap_s` passed since the first one (a slow group
    is measured over that window instead of being waited for)."""
    first_at, first_count, count = 0.0, 0.0, 0.0
    deadline = time.perf_counter() + start_timeout_s
    while True:
        count = _processed(metrics_url, group)
        now = time.perf_counter()
        if count and not first_at:
            first_at, first_count, deadline = now, count, now + run_cap_s
        if count >= target or now > deadline:
            return Progress(first_at, now, count - first_count, count >= target)
        time.sleep(SAMPLE_S)


def consumer_server(ws: Workspace, group: str, topic: str, extra_env: dict[str, str] | None = None) -> Server:
    port = free_port_block(1)
    env = {**ws.app_env(topic, f"consume-{group}"), "HOOKSTREAM_METRICS_PORT": str(port), **(extra_env or {})}
    argv = [str(launch.BIN / "hookstream"), "consume", group]
    return Server(f"consume-{group}", argv, env, port, ws.log_dir / f"consume-{group}.log", launch.REPO)


def sink_server(ws: Workspace) -> Server:
    """Where the notifier's HTTP notifications go: a bare WSGI 204, fast enough not to matter."""
    port = free_port_block(1)
    argv = [
        sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
        "--worker-class", "gthread", "--threads", "8", "--log-level", "warning", "bench.apps.sink:app",
    ]  # fmt: skip
    return Server("notify-sink", argv, {}, port, ws.log_dir / "notify-sink.log", launch.REPO)


def measure_group(ws: Workspace, group: str, topic: str, count: int, raw: LoopRate) -> LoopRate:
    extra: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        if group == "notifier":  # every event is one HTTP POST to the sink
            sink = stack.enter_context(running(sink_server(ws)))
            extra["HOOKSTREAM_NOTIFY_URL"] = f"{sink.url}/notify"
        member = stack.enter_context(running(consumer_server(ws, group, topic, extra)))
        url = f"{member.url}/metrics"
        progress = wait_processed(url, group, count, 90, ws.cfg.group_cap_s)
        samples = promtext.scrape(url)
        memory = member.memory()
    return LoopRate(
        name=group,
        events=int(progress.processed),
        seconds=round(progress.last_at - progress.first_at, 3) if progress.first_at else None,
        events_per_s=round(progress.rate, 1),
        peak_rss_mb=max((m.peak_rss_mb for m in memory), default=0.0),
        finished=progress.reached,
        dead_lettered=promtext.total(samples, "hookstream_consumer_dead_lettered_total", group=group),
        fraction_of_raw=round(progress.rate / raw.events_per_s, 3) if raw.events_per_s else None,
    )


def end_to_end(ws: Workspace, setting: WorkerSetting) -> EndToEnd:
    """Hookstream producer + indexer on a fresh topic; a steady rate for a while; the
    indexer's own end-to-end histogram (webhook received -> indexed durably) over that time."""
    cfg = ws.cfg
    topic = ws.broker.create_topic("bench-e2e")
    ws.broker.create_topic(f"{topic}-dlq")
    producer = launch.server(
        "hookstream", free_port_block(1), setting, ws.env_of("hookstream", topic, "e2e"), ws.log_dir, "-e2e"
    )
    probe = ws.targets("e2e-probe", producer.url + PATH, 1)
    with running(producer, ready_probe=probe), running(consumer_server(ws, "indexer", topic)) as indexer:
        url = f"{indexer.url}/metrics"
        # the probe must be indexed first: the member has joined and owns every partition
        if not wait_processed(url, "indexer", 1, 90).reached:
            raise RuntimeError("the indexer did not process the probe request within 90s")
        before = promtext.scrape(url)
        result = load(ws, producer, "e2e", cfg.e2e_rate, cfg.e2e_s)
        target = promtext.total(before, PROCESSED, group="indexer") + result.acked
        caught_up = wait_processed(url, "indexer", target, 60, 60).reached
        after = promtext.scrape(url)
    histogram = promtext.increase(
        promtext.buckets(after, END_TO_END, group="indexer"),
        promtext.buckets(before, END_TO_END, group="indexer"),
    )

    def ms(q: float) -> float | None:
        value = promtext.quantile(histogram, q)
        return None if value is None else round(value * 1000, 1)

    return EndToEnd(
        offered_rps=cfg.e2e_rate,
        acked_rps=round(result.acked_rps, 1),
        indexed=int(histogram[-1][1]) if histogram else 0,
        caught_up=caught_up,
        p50_ms=ms(0.50),
        p99_ms=ms(0.99),
    )
