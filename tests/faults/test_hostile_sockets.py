"""Scenario 5, hostile HTTP over real sockets against the producer under gunicorn: slow clients
(slowloris-style, bounded, loopback) must not starve the workers; oversize bodies are 413
whether announced or not; malformed framing is never a 500 or a 2xx. Duplicate deliveries:
`test_duplicate_deliveries.py`.
"""

from __future__ import annotations

import threading
import time

import pytest
import requests

from tests.faults.conftest import PipelineFactory
from tests.faults.harness import rawhttp
from tests.faults.harness.load import Attempt, post, wait_for_status
from tests.faults.harness.logscan import LogEvidence
from tests.faults.harness.processes import Pipeline, Proc
from tests.faults.harness.webhooks import SigningKeys, Webhook, fastio_webhook

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]

MAX_BODY = 64 * 1024
SLOW_CLIENTS = 100  # more than the producer's 2 workers x 32 threads
SLOW_SECONDS = 20.0


@pytest.fixture
def pipeline(make_pipeline: PipelineFactory) -> Pipeline:
    return make_pipeline(HOOKSTREAM_MAX_BODY_BYTES=str(MAX_BODY))


@pytest.fixture
def producer(pipeline: Pipeline) -> Proc:
    proc = pipeline.producer(workers=2)
    wait_for_status(proc.base_url + "/readyz")
    return proc


def test_slow_clients_do_not_starve_the_workers(
    producer: Proc, keys: SigningKeys, evidence: LogEvidence
) -> None:
    slow = rawhttp.SlowClients(producer.base_url, "/webhooks/fastio", SLOW_CLIENTS, SLOW_SECONDS).open()
    trickler = threading.Thread(target=slow.trickle, daemon=True)
    trickler.start()
    answers: list[Attempt] = []
    hooks: list[Webhook] = []
    try:
        time.sleep(3)  # every slow connection is in by now
        with requests.Session() as session:
            while trickler.is_alive() and len(answers) < 20:
                hooks.append(fastio_webhook(keys.fastio, len(hooks)))
                answers.append(post(session, producer.base_url, hooks[-1], timeout_s=10))
                time.sleep(0.5)
        still_slow = len(slow.socks)
    finally:
        trickler.join()
        slow.close()
    evidence.sent(hooks)
    assert answers, "no request was made while the slow clients held their connections"
    assert still_slow > SLOW_CLIENTS // 2, "the slow clients were gone before the check: it proved nothing"
    starved = [a for a in answers if a.status != 200]
    assert not starved, (
        f"{len(starved)}/{len(answers)} requests starved by {still_slow} slow clients: {starved[:3]}"
    )


def test_oversize_bodies_over_a_socket_are_413(producer: Proc, keys: SigningKeys) -> None:
    hook = fastio_webhook(keys.fastio)
    headers = {k: v for k, v in hook.request.headers.items()}
    # Announced: the producer answers from the headers, without waiting for a body never sent.
    announced = rawhttp.request_head(hook.request.path, {**headers, "Content-Length": str(MAX_BODY * 20)})
    assert rawhttp.exchange(producer.base_url, announced) == 413
    # Chunked: refused once the body read so far passes the limit.
    chunk = b"x" * 8192
    body = (
        b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BODY // len(chunk) + 4))
        + b"0\r\n\r\n"
    )
    chunked = rawhttp.request_head(hook.request.path, {**headers, "Transfer-Encoding": "chunked"})
    assert rawhttp.exchange(producer.base_url, chunked + body) == 413


MALFORMED_FRAMING = {
    "superscript length": [("Content-Length", "\xb2")],
    "negative length": [("Content-Length", "-1")],
    "float length": [("Content-Length", "1e3")],
    "plus length": [("Content-Length", "+5")],
    "hex length": [("Content-Length", "0x10")],
    "huge length": [("Content-Length", "9" * 30)],
    "two lengths": [("Content-Length", "5"), ("Content-Length", "6")],
    "length and chunked": [("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
    "unknown coding": [("Transfer-Encoding", "gzip")],
    "bad chunk size": [("Transfer-Encoding", "chunked")],
    "body shorter than its length": [("Content-Length", "5000")],
    "chunked body cut short": [("Transfer-Encoding", "chunked")],
}


def test_malformed_framing_is_never_a_500_or_a_2xx(producer: Proc, keys: SigningKeys) -> None:
    answers = {}
    for case, framing in MALFORMED_FRAMING.items():
        hook = fastio_webhook(keys.fastio)
        headers = {k: v for k, v in hook.request.headers.items() if k != "Content-Length"}
        body = {
            "bad chunk size": b"zz\r\n" + hook.request.body,
            "chunked body cut short": b"%x\r\n" % (len(hook.request.body) + 50) + hook.request.body,
        }.get(case, hook.request.body)
        raw = rawhttp.request_head(hook.request.path, headers, framing) + body
        answers[case] = rawhttp.exchange(producer.base_url, raw, half_close=case.endswith("short"))
    wrong = {case: status for case, status in answers.items() if status == 500 or 200 <= (status or 0) < 300}
    assert not wrong, f"malformed framing answered {wrong} (all answers: {answers})"
