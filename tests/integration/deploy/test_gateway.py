"""deploy/nginx/hookstream.conf under Debian's nginx, in front of two real producer instances, and in
front of upstreams that misbehave on purpose (take a request and never answer it)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from hookstream.settings import Settings
from hookstream_dev.nginx import Gateway
from hookstream_dev.process import free_port_block
from producer.providers import sign
from producer.samples import sample_event
from tests.faults.harness.processes import Pipeline
from tests.faults.harness.webhooks import SigningKeys
from tests.integration.producer.conftest import read_records

pytestmark = pytest.mark.integration


class Upstream(ThreadingHTTPServer):
    """An upstream that counts connections and requests, and either answers 200 or, as `taker`,
    reads the whole request and closes the connection without a word (a producer that died after
    taking it)."""

    daemon_threads = True

    def __init__(self, takes: bool = False) -> None:
        self.takes = takes
        self.connections = 0
        self.requests: list[tuple[str, str | None]] = []  # method, X-Request-ID
        self._lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _UpstreamHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        with self._lock:
            self.connections += 1
        super().process_request(request, client_address)


class _UpstreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as nginx asks for
    server: Upstream

    def _serve(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server._lock:
            self.server.requests.append((self.command, self.headers.get("X-Request-ID")))
        if self.server.takes:
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = _serve

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def gateway_home(tmp_path: Path) -> Path:
    return tmp_path / "nginx"


@pytest.fixture
def producers(settings: Settings, tmp_path: Path) -> Iterator[Pipeline]:
    pipeline = Pipeline(tmp_path, settings.kafka_bootstrap_servers, settings.topic, settings.dlq_topic,
                        SigningKeys.generate())  # fmt: skip
    try:
        pipeline.producer(workers=1)
        pipeline.producer(workers=1)
        yield pipeline
    finally:
        pipeline.stop()


def _gateway(home: Path, upstreams: list[str]) -> Gateway:
    gateway = Gateway(home, free_port_block(1), upstreams)
    gateway.start()
    return gateway


@pytest.fixture
def gateway(producers: Pipeline, gateway_home: Path) -> Iterator[Gateway]:
    gateway = _gateway(gateway_home, [proc.base_url.removeprefix("http://") for proc in producers.procs])
    yield gateway
    gateway.stop()


def _post_signed(gateway: Gateway, secret: str, **headers: str) -> requests.Response:
    body = sample_event("fastio")
    return requests.post(f"{gateway.url}/webhooks/fastio", data=body,
                         headers={**sign("fastio", body, secret), **headers}, timeout=15)  # fmt: skip


def test_a_webhook_reaches_kafka_through_the_gateway_with_its_request_id(
    gateway: Gateway, producers: Pipeline, settings: Settings
) -> None:
    request_id = f"req-{uuid.uuid4().hex}"
    answer = _post_signed(gateway, producers.keys.fastio, **{"X-Request-ID": request_id})
    assert answer.status_code == 200, answer.text
    assert answer.headers["X-Request-ID"] == request_id
    assert len(read_records(settings, 2, timeout_s=5)) == 1
    logged = "".join(proc.log.read_text() for proc in producers.procs)
    assert request_id in logged


def test_a_body_over_the_producers_limit_is_refused_at_the_gateway_as_json(
    gateway: Gateway, producers: Pipeline
) -> None:
    body = b"{" + b" " * (1024 * 1024) + b"}"
    answer = requests.post(f"{gateway.url}/webhooks/fastio", data=body,
                           headers=sign("fastio", body, producers.keys.fastio), timeout=15)  # fmt: skip
    assert answer.status_code == 413
    assert answer.json()["error"] == "body_too_large"


def test_a_dead_producer_is_skipped_and_no_webhook_is_lost(
    gateway: Gateway, producers: Pipeline, settings: Settings
) -> None:
    producers.procs[0].kill()
    sent = 20
    statuses = [_post_signed(gateway, producers.keys.fastio).status_code for _ in range(sent)]
    assert statuses == [200] * sent
    assert len(read_records(settings, sent + 1, timeout_s=5)) == sent


@pytest.fixture
def taker_and_counter(gateway_home: Path) -> Iterator[tuple[Gateway, Upstream, Upstream]]:
    taker, counter = Upstream(takes=True), Upstream()
    gateway = _gateway(gateway_home, [taker.address, counter.address])
    yield gateway, taker, counter
    gateway.stop()
    for upstream in (taker, counter):
        upstream.shutdown()


def test_a_post_an_upstream_took_is_never_sent_again(
    taker_and_counter: tuple[Gateway, Upstream, Upstream],
) -> None:
    gateway, taker, counter = taker_and_counter
    answers = []
    for _ in range(10):  # round robin: the taker gets one of the first two
        answers.append(requests.post(f"{gateway.url}/webhooks/fastio", data=b"{}", timeout=15))
        if taker.requests:
            break
    assert taker.requests, "the taker never got a request"
    # Each POST reached exactly one upstream: none was re-sent after the taker took it...
    assert len(taker.requests) + len(counter.requests) == len(answers)
    # ...and the one it took is answered as the producer's own 503 would be: retry later.
    refused = [answer for answer in answers if answer.status_code != 200]
    assert len(refused) == len(taker.requests) == 1
    assert refused[0].status_code == 503
    assert refused[0].headers["Retry-After"]
    assert refused[0].json()["error"] == "gateway_unavailable"


def test_a_get_an_upstream_dropped_is_retried_on_the_other(
    taker_and_counter: tuple[Gateway, Upstream, Upstream],
) -> None:
    gateway, taker, counter = taker_and_counter
    statuses = []
    for _ in range(10):
        statuses.append(requests.get(f"{gateway.url}/healthz", timeout=15).status_code)
        if taker.requests:
            break
    assert taker.requests
    assert statuses == [200] * len(statuses)  # the dropped GET was answered by the counter
    assert len(counter.requests) == len(statuses)


def test_upstream_connections_are_kept_alive_and_request_ids_made_when_missing(
    taker_and_counter: tuple[Gateway, Upstream, Upstream],
) -> None:
    gateway, _, counter = taker_and_counter
    with requests.Session() as session:
        for _ in range(20):
            session.get(f"{gateway.url}/healthz", timeout=15)
    assert len(counter.requests) >= 19
    assert counter.connections <= 2  # one per nginx worker at most, not one per request
    ids = [request_id for _, request_id in counter.requests]
    assert all(request_id and len(request_id) == 32 for request_id in ids)  # nginx's $request_id
    assert len(set(ids)) == len(ids)


def test_a_client_over_the_rate_limit_gets_429_with_retry_after(
    taker_and_counter: tuple[Gateway, Upstream, Upstream],
) -> None:
    gateway, _, _ = taker_and_counter

    def get(_: int) -> requests.Response:
        return requests.get(f"{gateway.url}/healthz", timeout=15)

    limited: list[requests.Response] = []
    with ThreadPoolExecutor(max_workers=16) as pool:
        for _ in range(10):  # bounded: 10 bursts of 800, far past the burst of 400 at 200/s
            limited = [answer for answer in pool.map(get, range(800)) if answer.status_code == 429]
            if limited:
                break
    assert limited, "no request was rate limited"
    assert limited[0].headers["Retry-After"] == "1"
    assert json.loads(limited[0].text)["error"] == "rate_limited"
