"""`hookstream producer` for real: gunicorn with two workers, metrics merged across them,
a chunked oversize upload cut off, and `hookstream send` as a new user would run it."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from hookstream.settings import Settings
from hookstream_dev.process import free_port_block
from producer import gunicorn_conf
from producer.providers import sign
from producer.samples import sample_event
from tests.integration.producer.conftest import read_records

HOOKSTREAM = str(Path(sys.executable).parent / "hookstream")
SECRET = "server-test-secret"
MAX_BODY = 4096


class Server:
    def __init__(self, port: int, metrics_dir: Path, env: dict[str, str]) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.metrics_dir = metrics_dir
        self.env = env

    def get(self, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return response.status, response.read().decode()

    def post(self, body: bytes) -> int:
        request = urllib.request.Request(
            self.url + "/webhooks/fastio", data=body, headers=sign("fastio", body, SECRET), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status


@contextmanager
def running(
    settings: Settings, tmp_path: Path, worker_class: str = "gevent", **extra_env: str
) -> Iterator[tuple[Server, subprocess.Popen[bytes]]]:
    """`hookstream producer` with two workers, until the block ends (then a graceful stop)."""
    port = free_port_block(1)
    metrics_dir = tmp_path / "metrics"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "HOOKSTREAM_TOPIC": settings.topic,
        "FASTIO_WEBHOOK_SECRET": SECRET,
        "HOOKSTREAM_MAX_BODY_BYTES": str(MAX_BODY),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "HOOKSTREAM_DATA_DIR": str(tmp_path / "data"),
        **extra_env,
    }
    log_path = tmp_path / "producer.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            HOOKSTREAM,
            "producer",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--worker-class",
            worker_class,
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Server(port, metrics_dir, env)
    try:
        for _ in range(60):
            try:
                if server.get("/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise AssertionError(log_path.read_text())
        # Both workers booted and loaded the app (the second may still be starting).
        for _ in range(60):
            started = log_path.read_text()
            if started.count("Booting worker with pid") == 2:
                break
            time.sleep(0.5)
        shipped = gunicorn_conf.GEVENT_WORKER if worker_class == "gevent" else worker_class  # its subclass
        assert f"Using worker: {shipped}" in started, started
        assert started.count("Booting worker with pid") == 2, started
        yield server, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log_path.read_text()
        log.close()


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[Server]:
    with running(settings, tmp_path) as (server, _):
        yield server


def scraped_total(text: str) -> float:
    match = re.search(r'^hookstream_http_requests_total\{provider="fastio",status="200"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else 0.0


def test_metrics_are_merged_across_two_workers(server: Server, settings: Settings) -> None:
    sent = 60
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda _: server.post(sample_event("fastio")), range(sent)))
    assert statuses == [200] * sent
    # Both workers served some of them: each writes its own files...
    writers = {path.stem.rsplit("_", 1)[-1] for path in server.metrics_dir.glob("counter_*.db")}
    assert len(writers) == 2, writers
    # ...and whichever worker answers a scrape reports the sum.
    assert server.get("/readyz")[0] == 200
    for _ in range(6):
        status, text = server.get("/metrics")
        assert status == 200
        assert scraped_total(text) == sent
        assert "hookstream_http_requests_in_flight" in text
    assert len(read_records(settings, sent)) == sent


def test_a_chunked_upload_past_the_limit_is_cut_off_with_413(server: Server) -> None:
    connection = http.client.HTTPConnection(server.url.removeprefix("http://"), timeout=10)
    chunks = (b"x" * 1024 for _ in range(MAX_BODY // 1024 + 4))
    connection.request(
        "POST",
        "/webhooks/fastio",
        body=chunks,
        headers={"Content-Type": "application/json", **sign("fastio", b"", SECRET)},
        encode_chunked=True,
    )
    response = connection.getresponse()
    assert response.status == 413
    assert b'"body_too_large"' in response.read()
    connection.close()
    assert server.get("/healthz")[0] == 200  # the worker discarded the rest and carries on


def test_hookstream_send_signs_with_the_configured_secret(server: Server, settings: Settings) -> None:
    result = subprocess.run(
        [HOOKSTREAM, "send", "--url", f"{server.url}/webhook/fastio", "--format", "timestamped", "--count=2"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith('200 {"status": "accepted"') for line in lines)
    assert len(read_records(settings, 2)) == 2


def test_hookstream_send_reports_a_refusal_with_a_non_zero_exit(server: Server, tmp_path: Path) -> None:
    payload = tmp_path / "incomplete.json"
    payload.write_text('{"event_id": "evt_incomplete"}')
    result = subprocess.run(
        [HOOKSTREAM, "send", str(payload), "--url", server.url + "/webhooks/fastio"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout.startswith('422 {"error": "missing_fields"')


def test_a_fresh_producer_shows_every_known_series_at_zero(server: Server) -> None:
    status, text = server.get("/metrics")  # before any webhook
    assert status == 200
    for reason in ("timeout", "error"):
        assert f'hookstream_kafka_delivery_failures_total{{reason="{reason}"}} 0.0' in text
    assert 'hookstream_http_rejections_total{provider="stripe",reason="kafka_unavailable"} 0.0' in text
    assert 'hookstream_http_requests_total{provider="fastio",status="503"} 0.0' in text


def test_a_graceful_stop_answers_and_delivers_what_is_in_flight(settings: Settings, tmp_path: Path) -> None:
    # A long linger keeps each record queued in librdkafka for a second: the stop comes first.
    # A long deadline: this is about the stop, not about a loaded machine's slow acks.
    slow = {"HOOKSTREAM_LIBRDKAFKA_LINGER_MS": "1500", "HOOKSTREAM_KAFKA_DELIVERY_TIMEOUT_S": "20"}
    with running(settings, tmp_path, **slow) as (server, process), ThreadPoolExecutor(4) as pool:
        answers = [pool.submit(server.post, sample_event("fastio")) for _ in range(4)]
        time.sleep(0.5)
        os.killpg(process.pid, signal.SIGTERM)
        assert [answer.result(timeout=20) for answer in answers] == [200] * 4
    assert len(read_records(settings, 4)) == 4


def test_a_graceful_stop_does_not_wait_for_idle_keep_alive_connections(
    settings: Settings, tmp_path: Path
) -> None:
    # A gateway keeps its connections open between requests; the stop must still reach
    # `worker_exit` (the last delivery and dedupe acks) before the master's SIGKILL.
    with running(settings, tmp_path) as (server, process):
        idle = []
        for _ in range(4):
            connection = http.client.HTTPConnection(
                "127.0.0.1", int(server.url.rsplit(":", 1)[1]), timeout=10
            )
            body = sample_event("fastio")
            connection.request("POST", "/webhooks/fastio", body, sign("fastio", body, SECRET))
            response = connection.getresponse()
            assert response.status == 200 and response.getheader("Connection") != "close"
            response.read()
            idle.append(connection)  # kept open, no request in flight
        stopping = time.monotonic()
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        stopped_in = time.monotonic() - stopping
    log = (tmp_path / "producer.log").read_text()
    assert "Worker graceful timeout" not in log, log
    assert stopped_in < gunicorn_conf.graceful_timeout, stopped_in
    for connection in idle:
        connection.close()
    assert len(read_records(settings, 4)) == 4


def test_gevent_workers_answer_once_kafka_acked(settings: Settings, tmp_path: Path) -> None:
    """The other class `hookstream producer` offers: greenlets wait for their acks, side by side."""
    with running(settings, tmp_path, worker_class="gevent") as (server, _), ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: server.post(sample_event("fastio")), range(24)))
        assert statuses == [200] * 24
        assert server.get("/readyz")[0] == 200  # the metadata call ran off the hub
    assert len(read_records(settings, 24)) == 24
