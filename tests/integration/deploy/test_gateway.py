"""deploy/nginx/hookstream.conf under Debian's nginx, in front of two real producer instances, and in
front of upstreams that misbehave on purpose (take a request and never answer it)."""

from __future__ import annotations

import json
import socket
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


def _post_body(gateway: Gateway, secret: str, body: bytes, **headers: str) -> requests.Response:
    return requests.post(f"{gateway.url}/webhooks/fastio", data=body,
                         headers={**sign("fastio", body, secret), **headers}, timeout=15)  # fmt: skip


def _post_signed(gateway: Gateway, secret: str, **headers: str) -> requests.Response:
    return _post_body(gateway, secret, sample_event("fastio"), **headers)


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
    """A request nginx had already written to the dead producer's kept-alive connection is not
    re-sent (a POST never is, once its bytes may have reached a producer): it gets 503, and the
    sender retries it, as senders do. Every other request goes to the live producer."""
    producers.procs[0].kill()
    sent = 20
    retried = 0
    for _ in range(sent):
        body = sample_event("fastio")  # one delivery: its retry carries the same event_id
        answer = _post_body(gateway, producers.keys.fastio, body)
        if answer.status_code == 503:
            retried += 1
            answer = _post_body(gateway, producers.keys.fastio, body)
        assert answer.status_code == 200, answer.text
    assert retried <= 1  # at most the request in flight on the dead connection
    assert len(read_records(settings, sent + 1, timeout_s=5)) == sent  # none lost, none twice


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


def _pipelined(host: str, port: int, path: str, count: int) -> bytes:
    """`count` GETs written at once on one keep-alive connection, and every byte answered: they
    reach nginx as fast as it reads, whatever the speed of this machine or of Python."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    answered = b""
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(request * count)
        while answered.count(b"HTTP/1.1 ") < count:
            chunk = sock.recv(65536)
            if not chunk:  # nginx closed the connection: what it answered is all there is
                break
            answered += chunk
    return answered


def _first_response(answered: bytes, status: int) -> tuple[dict[str, str], bytes] | None:
    """Headers (lower-cased names) and body of the first response with `status`, if any."""
    at = answered.find(f"HTTP/1.1 {status} ".encode())
    if at < 0:
        return None
    head_end = answered.index(b"\r\n\r\n", at)
    lines = answered[at:head_end].decode("latin-1").split("\r\n")[1:]
    headers = {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
    body_at = head_end + 4
    return headers, answered[body_at : body_at + int(headers["content-length"])]


@pytest.fixture
def gateway_to_nowhere(gateway_home: Path) -> Iterator[Gateway]:
    """A gateway whose upstream refuses at once: nginx answers every request itself (503 JSON),
    so requests reach its rate limit as fast as it reads them, not as fast as a Python upstream."""
    gateway = _gateway(gateway_home, [f"127.0.0.1:{free_port_block(1)}"])
    yield gateway
    gateway.stop()


def test_a_client_over_the_rate_limit_gets_429_with_retry_after(gateway_to_nowhere: Gateway) -> None:
    host, port = gateway_to_nowhere.url.removeprefix("http://").split(":")
    # 4 x 400 requests at once from one address: past the burst of 400 at 200/s.
    with ThreadPoolExecutor(max_workers=4) as pool:
        bursts = list(pool.map(lambda _: _pipelined(host, int(port), "/healthz", 400), range(4)))
    limited = next((found for burst in bursts if (found := _first_response(burst, 429))), None)
    assert limited is not None, "no request was rate limited"
    headers, body = limited
    assert headers["retry-after"] == "1"
    assert json.loads(body)["error"] == "rate_limited"
