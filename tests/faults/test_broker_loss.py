"""Scenario 1, broker loss: under steady signed load, SIGKILL one broker, restart it, wait for
its replicas to catch up, then the next one, until every node has died once.

With replication factor 3 and min.insync.replicas=2 one lost broker must cost nothing: every
event answered 2xx is in the topic and each group's sink holds it exactly once.
"""

from __future__ import annotations

import time

import pytest

from hookstream_dev.kafka import LocalCluster
from tests.faults.conftest import PipelineFactory
from tests.faults.harness.accounting import close_books
from tests.faults.harness.kafka_reader import wait_in_sync
from tests.faults.harness.ledger import Ledger
from tests.faults.harness.load import LoadGenerator, wait_for_status
from tests.faults.harness.logscan import LogEvidence
from tests.faults.harness.receiver import NotificationReceiver
from tests.faults.harness.sinks import GROUPS
from tests.faults.harness.webhooks import SigningKeys, fastio_webhook

pytestmark = [pytest.mark.faults, pytest.mark.timeout(480)]

KILL_ORDER = (2, 3, 1)  # every node dies once, the first controller among them
DOWN_S = 6.0


def test_losing_one_broker_at_a_time_loses_nothing(
    healthy_cluster: LocalCluster,
    make_pipeline: PipelineFactory,
    receiver: NotificationReceiver,
    keys: SigningKeys,
    ledger: Ledger,
    evidence: LogEvidence,
) -> None:
    pipeline = make_pipeline()
    producer = pipeline.producer(workers=2)
    pipeline.start_groups(GROUPS)
    url = producer.base_url
    wait_for_status(url + "/readyz")
    topics = [pipeline.topic, pipeline.dlq_topic]

    load = LoadGenerator(
        url, lambda n: fastio_webhook(keys.fastio, n), count=5000, rate_per_s=10, max_seconds=240, retries=2
    )
    load.start()
    time.sleep(5)
    for node in KILL_ORDER:
        healthy_cluster.kill(node)
        time.sleep(DOWN_S)  # the load goes on against the two survivors
        healthy_cluster.start_node(node)
        wait_in_sync(healthy_cluster.bootstrap_servers, topics)
    time.sleep(3)
    load.stop()
    evidence.sent(load.webhooks.values())

    statuses = load.statuses()
    assert "500" not in statuses and statuses.get("200", 0) > 0, statuses
    books = close_books(
        "1-broker-loss",
        pipeline,
        receiver,
        ledger,
        load.sent(),
        load.accepted(),
        notes={"statuses": statuses, "kills": list(KILL_ORDER)},
    )
    assert books.row.ok, books.explain()
