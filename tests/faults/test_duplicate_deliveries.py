"""Scenario 5, duplicate deliveries of one event_id yield one record in each group's sink.

Concurrent deliveries of one webhook, taken by different gunicorn workers, leave ONE record:
the producer's dedupe is shared by every worker through the state store, and the copies wait for
the first one's acknowledgement. One way a copy still reaches Kafka, by design: a record that
landed after its request got a 503, followed by the sender's accepted retry. The groups must
absorb such copies by event_id.
"""

from __future__ import annotations

import threading

import pytest
import requests
from confluent_kafka import Producer

from hookstream_dev.kafka import LocalCluster
from schemas.codec import Envelope, encode, utc_now
from tests.faults.conftest import PipelineFactory
from tests.faults.harness.accounting import close_books
from tests.faults.harness.kafka_reader import kafka_headers
from tests.faults.harness.ledger import Ledger
from tests.faults.harness.load import Attempt, post, wait_for_status
from tests.faults.harness.logscan import LogEvidence
from tests.faults.harness.processes import Pipeline
from tests.faults.harness.receiver import NotificationReceiver
from tests.faults.harness.sinks import GROUPS
from tests.faults.harness.webhooks import SigningKeys, Webhook, fastio_webhook

pytestmark = [pytest.mark.faults, pytest.mark.timeout(300)]


@pytest.fixture
def pipeline(make_pipeline: PipelineFactory) -> Pipeline:
    pipeline = make_pipeline()
    pipeline.start_groups(GROUPS)
    return pipeline


def _burst(url: str, hook: Webhook, copies: int) -> list[Attempt]:
    """`copies` deliveries of one webhook released at the same instant."""
    barrier = threading.Barrier(copies)
    answers: list[Attempt] = []

    def deliver() -> None:
        with requests.Session() as session:
            barrier.wait()
            answers.append(post(session, url, hook, timeout_s=15))

    threads = [threading.Thread(target=deliver) for _ in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_concurrent_deliveries_of_one_event_yield_one_record(
    pipeline: Pipeline,
    receiver: NotificationReceiver,
    keys: SigningKeys,
    ledger: Ledger,
    evidence: LogEvidence,
) -> None:
    producer = pipeline.producer(workers=2)
    wait_for_status(producer.base_url + "/readyz")
    hooks = [fastio_webhook(keys.fastio, n) for n in range(12)]
    answers = [a for hook in hooks for a in _burst(producer.base_url, hook, copies=8)]
    evidence.sent(hooks)
    assert {a.status for a in answers} <= {200, 503}, {a.status for a in answers}

    books = close_books(
        "5-concurrent-duplicates",
        pipeline,
        receiver,
        ledger,
        {h.event_id for h in hooks},
        {a.event_id for a in answers if a.accepted},
        notes={"http_answers": len(answers), "answered_duplicate": sum(a.duplicate for a in answers)},
    )
    assert books.row.ok, books.explain()
    assert books.row.notes["events_with_kafka_copies"]["of_2xx"] == 0, books.row.notes


@pytest.mark.faults_smoke
def test_copies_left_by_a_503_and_a_retry_yield_one_record(
    pipeline: Pipeline,
    healthy_cluster: LocalCluster,
    receiver: NotificationReceiver,
    keys: SigningKeys,
    ledger: Ledger,
    evidence: LogEvidence,
) -> None:
    # Deterministic: the same envelope twice in the topic, as the producer leaves it.
    copied = [fastio_webhook(keys.fastio, n) for n in range(6)]
    kafka = Producer({"bootstrap.servers": healthy_cluster.bootstrap_servers, "acks": "all"})
    for n, hook in enumerate(copied):
        envelope = Envelope(
            event_id=hook.event_id,
            provider="fastio",
            event_type="workspace_storage_file_added",
            workspace_id=f"ws-{n}",
            payload=hook.request.body,
            received_at=utc_now(),
            object_id="obj-" + hook.event_id.removeprefix("evt-"),
        )
        for _ in range(2):
            kafka.produce(
                pipeline.topic,
                encode(envelope),
                envelope.workspace_id.encode(),
                headers=kafka_headers(envelope.headers()),
            )
    assert kafka.flush(30) == 0
    del kafka  # its threads would keep calling a cluster the session stops
    evidence.sent(copied)

    ids = {h.event_id for h in copied}
    books = close_books("5-copies-in-kafka", pipeline, receiver, ledger, ids, ids)
    assert books.row.ok, books.explain()
