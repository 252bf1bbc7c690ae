"""Helpers for the consumer tests: envelopes written with a plain confluent Producer, members
run in threads, metric samples, committed offsets, and a loopback HTTP receiver."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import REGISTRY

from consumers.handler import Handler, Record
from consumers.runtime import Member
from hookstream.kafka import ProducerConfig
from hookstream.settings import Settings
from schemas import codec

HOOKSTREAM = str(Path(sys.executable).parent / "hookstream")


class Recorder(Handler):
    """Records every record it handled; `fail` decides which attempts raise."""

    def __init__(
        self,
        fail: Callable[[Record], Exception | None] = lambda record: None,
        delay_s: float = 0.0,
        log: list[tuple[str, Record]] | None = None,
        tag: str = "",
    ) -> None:
        self.fail = fail
        self.delay_s = delay_s
        self.log = log if log is not None else []
        self.tag = tag
        self.attempts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def handle(self, record: Record) -> None:
        self.attempts[record.envelope.event_id] += 1
        error = self.fail(record)
        if error is not None:
            raise error
        if self.delay_s:
            time.sleep(self.delay_s)
        with self._lock:
            self.log.append((self.tag, record))

    def handled(self) -> list[str]:
        return [record.envelope.event_id for _, record in self.log]


def fast(settings: Settings, **overrides: object) -> Settings:
    """Settings for quick tests: small batches, a short session, a unique group prefix."""
    quick: dict[str, object] = {
        "consumer_batch_size": 20,
        "consumer_session_timeout_ms": 6000,
        "consumer_group_prefix": f"t{uuid.uuid4().hex[:8]}-",
        "metrics_port": 0,
    }
    return replace(settings, **{**quick, **overrides})  # type: ignore[arg-type]


def unique(name: str) -> str:
    """A group name no other test uses (metrics are labelled by group, in one registry)."""
    return f"{name}-{uuid.uuid4().hex[:6]}"


def envelope(
    n: int,
    workspace: str | None = None,
    event_type: str = "workspace_storage_file_added",
    **payload_fields: object,
) -> codec.Envelope:
    workspace = workspace or f"ws-{n % 8}"
    body = {
        "event": event_type,
        "event_id": f"evt-{n}",
        "workspace_id": workspace,
        "object_id": f"obj-{n}",
        "resource": {"name": f"report-{n}.pdf", "path": f"/docs/report-{n}.pdf", "size": n},
        **payload_fields,
    }
    return codec.Envelope(
        event_id=f"evt-{n}",
        provider="fastio",
        event_type=event_type,
        workspace_id=workspace,
        payload=json.dumps(body).encode(),
        received_at=codec.utc_now(),
        object_id=f"obj-{n}",
    )


class Sent:
    """Where each produced record landed."""

    def __init__(self) -> None:
        self.positions: dict[bytes, tuple[int, int]] = {}  # value -> (partition, offset)


def produce(settings: Settings, items: Sequence[codec.Envelope | tuple[bytes, bytes]]) -> Sent:
    """Write envelopes (keyed by workspace, with their headers) or raw (key, value) pairs."""
    producer = Producer(ProducerConfig.from_settings(settings).as_librdkafka())
    sent = Sent()

    def remember(err, msg):  # type: ignore[no-untyped-def]
        assert err is None, err
        sent.positions[msg.value()] = (msg.partition(), msg.offset())

    for item in items:
        if isinstance(item, codec.Envelope):
            producer.produce(
                settings.topic,
                codec.encode(item),
                key=item.workspace_id,
                headers=list(item.headers()),  # type: ignore[arg-type]  # bytes values are accepted
                on_delivery=remember,
            )
        else:
            key, value = item
            producer.produce(settings.topic, value, key=key, on_delivery=remember)
        producer.poll(0)
    assert producer.flush(30) == 0
    return sent


def wait_until(predicate: Callable[[], bool], timeout_s: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.1)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def lag_is_zero(group: str, topic: str, partitions: int) -> bool:
    for partition in range(partitions):
        labels = {"group": group, "topic": topic, "partition": str(partition)}
        if REGISTRY.get_sample_value("hookstream_consumer_lag_messages", labels) != 0.0:
            return False
        if REGISTRY.get_sample_value("hookstream_consumer_lag_seconds", labels) != 0.0:
            return False
    return True


class Running:
    """A Member running in a thread; `stop()` asks it to finish and waits."""

    def __init__(self, member: Member) -> None:
        self.member = member
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.member.run()
        except BaseException as exc:
            self.error = exc

    def stop(self, timeout_s: float = 60.0) -> None:
        self.member.stop()
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "member did not stop"


def committed_and_ends(settings: Settings, group_id: str, partitions: int = 4) -> tuple[list[int], list[int]]:
    """The group's committed offset and the high watermark of every partition of the topic."""
    consumer = Consumer({**settings.kafka_common(), "group.id": group_id, "enable.auto.commit": False})
    try:
        tps = [TopicPartition(settings.topic, p) for p in range(partitions)]
        committed = [max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10)]
        ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps]
    finally:
        consumer.close()
    return committed, ends


class Process:
    """One `hookstream consume <group>` member, logging to a file."""

    def __init__(self, group: str, env: dict[str, str], log: Path, metrics_port: int) -> None:
        self.group = group
        self.metrics_port = metrics_port
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                [HOOKSTREAM, "consume", group],
                env={**env, "HOOKSTREAM_METRICS_PORT": str(metrics_port)},
                stdout=out,
                stderr=out,
            )

    def metric(self, name: str) -> list[float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as reply:
            text = reply.read().decode()
        return [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{")]


class Receiver:
    """A loopback HTTP endpoint that records the Idempotency-Key of every request."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self._lock = threading.Lock()
        receiver = self

        class Handle(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    receiver.keys.append(self.headers["Idempotency-Key"])
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self.url = f"http://127.0.0.1:{self.server.server_port}/notify"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
