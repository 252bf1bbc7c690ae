"""Scenario 2, Kafka gone entirely: every broker SIGKILLed under load, then brought back.

While no broker runs, the producer answers 503 with Retry-After (never a 2xx) within its
delivery deadline and /readyz fails; once the brokers are back the same producer processes
serve 200 again, and every event that did get a 2xx reaches Kafka and every group's sink.
"""

from __future__ import annotations

import time

import pytest
import requests

from hookstream_dev.kafka import LocalCluster
from tests.faults.conftest import PipelineFactory
from tests.faults.harness.accounting import close_books
from tests.faults.harness.ledger import Ledger
from tests.faults.harness.load import LoadGenerator, post, wait_for_status
from tests.faults.harness.logscan import LogEvidence
from tests.faults.harness.receiver import NotificationReceiver
from tests.faults.harness.sinks import GROUPS
from tests.faults.harness.webhooks import SigningKeys, fastio_webhook

pytestmark = [pytest.mark.faults, pytest.mark.timeout(420)]

DELIVERY_TIMEOUT_S = 2.0
# The deadline is the producer's own setting; the slack only absorbs a busy 2-core machine.
# Without the deadline a request would wait out librdkafka's 30 s delivery timeout.
DEADLINE_SLACK_S = 6.0


def test_all_brokers_down_means_503_then_recovery_without_restart(
    healthy_cluster: LocalCluster,
    make_pipeline: PipelineFactory,
    receiver: NotificationReceiver,
    keys: SigningKeys,
    ledger: Ledger,
    evidence: LogEvidence,
) -> None:
    pipeline = make_pipeline(HOOKSTREAM_KAFKA_DELIVERY_TIMEOUT_S=str(DELIVERY_TIMEOUT_S))
    producer = pipeline.producer(workers=2)
    pipeline.start_groups(GROUPS)
    url = producer.base_url
    wait_for_status(url + "/readyz")
    workers_before = producer.children()

    load = LoadGenerator(url, lambda n: fastio_webhook(keys.fastio, n), count=300, rate_per_s=8, retries=0)
    load.start()
    time.sleep(4)

    for node in healthy_cluster.node_ids:
        healthy_cluster.kill(node)
    down_at = time.monotonic()
    readyz_while_down = wait_for_status(url + "/readyz", 503, timeout_s=30)
    with requests.Session() as session:
        probes = [post(session, url, fastio_webhook(keys.fastio, n), timeout_s=30) for n in range(3)]
    time.sleep(4)

    up_from = time.monotonic()
    healthy_cluster.start()
    wait_for_status(url + "/readyz", 200, timeout_s=120)
    with requests.Session() as session:
        deadline = time.monotonic() + 120
        while (after := post(session, url, fastio_webhook(keys.fastio, 10_000), 15)).status != 200:
            assert time.monotonic() < deadline, f"no 200 after the brokers came back: {after}"
            time.sleep(1)
    load.wait()
    evidence.sent(load.webhooks.values())

    # While every broker was down: never a 2xx, always a prompt 503 with Retry-After.
    during = [
        a
        for a in [*load.attempts, *probes]
        if a.started_at > down_at and a.started_at + a.elapsed_s < up_from
    ]
    assert during, "no request was made while the brokers were down: the scenario tested nothing"
    assert not [a for a in during if a.accepted], "a 2xx while no broker was running"
    assert {a.status for a in during} == {503}, {a.status for a in during}
    assert all(a.retry_after for a in during), "a 503 without Retry-After"
    slowest = max(a.elapsed_s for a in during)
    assert slowest < DELIVERY_TIMEOUT_S + DEADLINE_SLACK_S, f"a 503 took {slowest:.1f}s"
    assert 503 in readyz_while_down

    # Recovered by itself: the same master and the same workers.
    assert producer.alive and producer.starts == 1
    assert producer.children() == workers_before, "gunicorn workers were replaced"
    assert set(load.statuses()) <= {"200", "503"}, load.statuses()

    books = close_books(
        "2-kafka-gone",
        pipeline,
        receiver,
        ledger,
        load.sent(),
        load.accepted(),
        notes={
            "statuses": load.statuses(),
            "slowest_503_s": round(slowest, 2),
            "requests_while_down": len(during),
        },
    )
    assert books.row.ok, books.explain()
