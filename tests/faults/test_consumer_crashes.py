"""Scenario 3, consumer crashes: two members per group under load; one member after another is
SIGKILLed (mid-batch: the notifier's destination is slow, so its batches stay open) and
started again. Nothing is lost; no index row, archive record or notification is doubled.
"""

from __future__ import annotations

import random
import time

import pytest

from hookstream_dev.kafka import LocalCluster
from tests.faults.conftest import PipelineFactory
from tests.faults.harness.accounting import close_books, wait_caught_up
from tests.faults.harness.ledger import Ledger
from tests.faults.harness.load import LoadGenerator, wait_for_status
from tests.faults.harness.logscan import LogEvidence
from tests.faults.harness.receiver import NotificationReceiver
from tests.faults.harness.sinks import GROUPS
from tests.faults.harness.webhooks import SigningKeys, fastio_webhook

pytestmark = [pytest.mark.faults, pytest.mark.timeout(480)]

KILLS = 9
SEED = 6  # the kill sequence is the same every run; the timing, on a busy box, is not


def test_members_killed_mid_batch_lose_and_double_nothing(
    healthy_cluster: LocalCluster,
    make_pipeline: PipelineFactory,
    receiver: NotificationReceiver,
    keys: SigningKeys,
    ledger: Ledger,
    evidence: LogEvidence,
) -> None:
    receiver.delay_s = 0.02
    pipeline = make_pipeline(HOOKSTREAM_CONSUMER_BATCH_SIZE="50")
    producer = pipeline.producer(workers=2)
    members = pipeline.start_groups(GROUPS, per_group=2)
    wait_for_status(producer.base_url + "/readyz")

    load = LoadGenerator(
        producer.base_url, lambda n: fastio_webhook(keys.fastio, n), count=700, rate_per_s=12, retries=2
    )
    load.start()
    rng = random.Random(SEED)
    killed: list[str] = []
    time.sleep(4)
    for _ in range(KILLS):
        victim = rng.choice(members)
        victim.kill()
        killed.append(victim.name)
        time.sleep(rng.uniform(0.5, 2.0))
        victim.start()
        time.sleep(rng.uniform(2.0, 4.0))
    load.wait()
    evidence.sent(load.webhooks.values())

    books = close_books(
        "3-consumer-crashes",
        pipeline,
        receiver,
        ledger,
        load.sent(),
        load.accepted(),
        settle_timeout_s=150,
        members_killed=True,
        notes={"statuses": load.statuses(), "killed": killed},
    )
    assert books.row.ok, books.explain()
    assert all(m.alive for m in members), [m.name for m in members if not m.alive]
    verify = pipeline.cli("archive", "verify")
    assert verify.returncode == 0 and "duplicates: none" in verify.stdout, verify.stdout + verify.stderr
    lag = wait_caught_up(pipeline, GROUPS)
    assert not any(lag.values()), f"lag left after the crashes: {lag}"
