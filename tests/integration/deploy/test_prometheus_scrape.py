"""The real thing: Debian's Prometheus scrapes a live producer and a live consumer member on
loopback, loads the alert rules, and has every metric the dashboard queries.

Traffic is shaped so each metric has a series: accepted webhooks, a bad signature (rejection),
a repeated event (duplicate), and poison bytes on the topic (dead-lettered). Only delivery
failures are not provoked here (that takes a broker that stops acknowledging; tests/faults/ does it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer

from hookstream.settings import Settings
from hookstream_dev.process import free_port_block
from tests.unit.deploy.promql_names import ALERTS, dashboard_metric_names
from tests.unit.deploy.tools import debian_tool

HOOKSTREAM = Path(sys.executable).with_name("hookstream")
NOT_PROVOKED = {"hookstream_kafka_delivery_failures_total"}
SECRET = "scrape-test-" + uuid.uuid4().hex


def _get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:
        return 0, b""


def _wait_for(what: str, probe: Callable[[], bool], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while not probe():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


class Processes:
    """Processes this test started, stopped by their own pid (SIGTERM, then SIGKILL)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.running.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.running:
            process.terminate()
        for process in self.running:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(self.logs.glob("*.log")))


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    status, body = _get(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert status == 200, body
    result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
    return result


def test_prometheus_scrapes_every_dashboard_metric(
    settings: Settings, tmp_path: Path, processes: Processes
) -> None:
    prometheus_bin = debian_tool("prometheus")
    base = free_port_block(4)
    producer_port, consumer_port, archiver_port, prometheus_port = base, base + 1, base + 2, base + 3
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "HOOKSTREAM_TOPIC": settings.topic,
        "HOOKSTREAM_DLQ_TOPIC": settings.dlq_topic,
        "HOOKSTREAM_DATA_DIR": str(tmp_path / "data"),
        "HOOKSTREAM_CONSUMER_GROUP_PREFIX": f"scrape-{uuid.uuid4().hex[:8]}-",
        "FASTIO_WEBHOOK_SECRET": SECRET,
    }
    processes.start(
        "producer",
        [str(HOOKSTREAM), "producer", "--bind", f"127.0.0.1:{producer_port}", "--workers", "2"],
        # Only the producer: prometheus_client turns multiprocess on wherever this is set.
        {**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")},
    )
    processes.start(
        "indexer",
        [str(HOOKSTREAM), "consume", "indexer"],
        {**env, "HOOKSTREAM_METRICS_PORT": str(consumer_port)},
    )
    # The archiver too: the dashboard shows its uploads.
    processes.start(
        "archiver",
        [str(HOOKSTREAM), "consume", "archiver"],
        {**env, "HOOKSTREAM_METRICS_PORT": str(archiver_port)},
    )
    producer_url = f"http://127.0.0.1:{producer_port}"
    try:
        _wait_for("the producer to be ready", lambda: _get(f"{producer_url}/readyz")[0] == 200)
        for port in (consumer_port, archiver_port):
            url = f"http://127.0.0.1:{port}/metrics"
            _wait_for(url, lambda url=url: _get(url)[0] == 200)
    except AssertionError:
        raise AssertionError(processes.tail()) from None

    # Traffic: accepted events, one of them repeated (a duplicate), and a bad signature.
    webhook = f"{producer_url}/webhooks/fastio"
    body = tmp_path / "event.json"
    body.write_bytes(
        json.dumps(
            {
                "event_id": f"evt_{uuid.uuid4().hex}",
                "event": "workspace_storage_file_added",
                "workspace_id": "ws_0001",
                "object_id": "f_1",
            }
        ).encode()
    )
    send_env = {**env, "FASTIO_WEBHOOK_SECRET": SECRET}
    # The second and third copies are duplicates: the workers share one dedupe store.
    for args in (["--count", "5"], [str(body), "--count", "3"]):
        done = subprocess.run(
            [str(HOOKSTREAM), "send", "--url", webhook, *args], env=send_env, capture_output=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert (
        _post(
            webhook,
            body.read_bytes(),
            {"Content-Type": "application/json", "Fastio-Signature": "sha256=" + "0" * 64},
        )
        == 401
    )
    # Poison on the topic: the consumer dead-letters it.
    poison = Producer(settings.kafka_common())
    poison.produce(settings.topic, b"not an envelope", key=b"ws_0001")
    assert poison.flush(30) == 0

    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {
                "job_name": "hookstream-producer",
                "static_configs": [{"targets": [f"127.0.0.1:{producer_port}"]}],
            },
            {
                "job_name": "hookstream-consumers",
                "static_configs": [{"targets": [f"127.0.0.1:{consumer_port}", f"127.0.0.1:{archiver_port}"]}],
            },
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    processes.start(
        "prometheus",
        [
            prometheus_bin,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        env,
    )
    prometheus = f"http://127.0.0.1:{prometheus_port}"
    _wait_for("Prometheus to be ready", lambda: _get(f"{prometheus}/-/ready")[0] == 200)

    jobs = {"hookstream-producer", "hookstream-consumers"}

    def targets_up() -> bool:
        return {r["metric"]["job"] for r in _query(prometheus, "up == 1")} >= jobs

    _wait_for("both targets up", targets_up)

    wanted = dashboard_metric_names() - NOT_PROVOKED
    missing: set[str] = set(wanted)

    def all_present() -> bool:
        for name in sorted(missing):
            if _query(prometheus, f'count({{__name__="{name}"}})'):
                missing.discard(name)
        return not missing

    try:
        _wait_for("every dashboard metric in Prometheus", all_present, timeout_s=120)
    except AssertionError:
        raise AssertionError(f"never scraped: {sorted(missing)}\n{processes.tail()}") from None

    # The values say what happened, not only that the series exist.
    def total(expr: str) -> float:
        return sum(float(r["value"][1]) for r in _query(prometheus, expr))

    assert total('hookstream_http_requests_total{status="200"}') >= 7
    assert total('hookstream_http_rejections_total{reason="invalid_signature"}') == 1
    assert total("hookstream_duplicates_total") >= 1
    _wait_for(
        "the poison record dead-lettered",
        lambda: total('hookstream_consumer_dead_lettered_total{reason="poison"}') >= 1,
    )

    status, body_bytes = _get(f"{prometheus}/api/v1/rules")
    loaded = {r["name"] for g in json.loads(body_bytes)["data"]["groups"] for r in g["rules"]}
    expected = {r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]}
    assert status == 200 and loaded == expected
