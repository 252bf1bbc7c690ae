"""Scenario 7, scale out, scale in, crash: the production topology under a steady load.

Two producer instances share Redis; every group's members each have a data directory of their own
and share only OpenSearch, S3 and Redis; the envelope goes through the schema registry. Senders
spread over many workspaces retry a delivery against the OTHER instance, and resend some accepted
ones there too. Meanwhile, for every group: a third member joins, one is SIGKILLed, one stops
gracefully, the killed one comes back; and one producer instance restarts.

The books: nothing lost, no second Kafka record for a delivery resent across instances, every file
once in the index in its newest state, every record once in the archive (`archive verify` agrees),
every notification once per event and destination, but for the crash window (a member killed
between a destination's 2xx and its record), which is counted apart and bounded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from hookstream_dev.redis import LocalRedis
from hookstream_dev.registry import LocalRegistry
from hookstream_dev.s3proxy import S3Proxy
from tests.faults.conftest import PipelineFactory
from tests.faults.harness.accounting import close_books, wait_caught_up
from tests.faults.harness.kafka_reader import event_ids, read_all
from tests.faults.harness.ledger import Ledger
from tests.faults.harness.load import wait_for_status
from tests.faults.harness.logscan import LogEvidence
from tests.faults.harness.processes import Pipeline, Proc
from tests.faults.harness.receiver import NotificationReceiver
from tests.faults.harness.shared import CrossInstanceLoad, SharedStores
from tests.faults.harness.sinks import GROUPS
from tests.faults.harness.webhooks import SigningKeys, fastio_webhook

pytestmark = pytest.mark.faults

WORKSPACES = tuple(f"ws-{n}" for n in range(40))


@dataclass(frozen=True)
class Plan:
    scenario: str
    events: int
    rate_per_s: float
    full: bool  # every membership change; else one extra member per group and one SIGKILL


@pytest.fixture
def stores(
    redis_server: LocalRedis, opensearch_url: str, s3proxy: S3Proxy, schema_registry: LocalRegistry
) -> SharedStores:
    return SharedStores.fresh(redis_server.url, opensearch_url, s3proxy.environment(), schema_registry.url)


def _member(pipeline: Pipeline, group: str) -> Proc:
    """A member with a data directory of its own, as a pod on another host would have."""
    n = len(pipeline.members(group)) + 1
    data = pipeline.workdir / "hosts" / f"{group}-{n}"
    data.mkdir(parents=True, exist_ok=True)
    return pipeline.member(group, wait=False, HOOKSTREAM_DATA_DIR=str(data))


QUICK = Plan("7-scale-out-quick", events=150, rate_per_s=10, full=False)
FULL = Plan("7-scale-out", events=600, rate_per_s=10, full=True)


@pytest.mark.parametrize(
    "plan",
    [
        pytest.param(QUICK, id="quick", marks=[pytest.mark.faults_smoke, pytest.mark.timeout(420)]),
        pytest.param(FULL, id="full", marks=pytest.mark.timeout(900)),
    ],
)
def test_scale_out_scale_in_and_crash_lose_and_double_nothing(
    plan: Plan,
    make_pipeline: PipelineFactory,
    stores: SharedStores,
    receiver: NotificationReceiver,
    keys: SigningKeys,
    ledger: Ledger,
    evidence: LogEvidence,
) -> None:
    receiver.delay_s = 0.02  # the notifier's batches stay open long enough to be killed mid-way
    pipeline = make_pipeline(HOOKSTREAM_CONSUMER_BATCH_SIZE="50", **stores.env())
    producers = (pipeline.producer(workers=2), pipeline.producer(workers=2))
    for proc in [_member(pipeline, group) for group in GROUPS for _ in range(2)]:
        proc.wait_ready()
    for producer in producers:
        wait_for_status(producer.base_url + "/readyz")

    load = CrossInstanceLoad(
        (producers[0].base_url, producers[1].base_url),
        lambda n: fastio_webhook(keys.fastio, n, workspaces=WORKSPACES),
        count=plan.events,
        rate_per_s=plan.rate_per_s,
        retries=3,
        max_seconds=plan.events / plan.rate_per_s + 60,
    )
    load.start()
    killed: dict[str, int] = {group: 0 for group in GROUPS}
    time.sleep(3)
    third = {group: _member(pipeline, group) for group in GROUPS}  # scale out
    time.sleep(4)
    victims = {group: pipeline.members(group)[0] for group in GROUPS}
    for group, victim in victims.items():  # crash
        victim.kill()
        killed[group] += 1
    if plan.full:
        time.sleep(4)
        for group in GROUPS:  # scale in, gracefully
            pipeline.members(group)[1].stop()
        time.sleep(3)
        for victim in victims.values():  # the crashed pod is rescheduled
            victim.start(wait=False)
        time.sleep(3)
        producers[0].stop()  # a rolling restart of one producer instance
        producers[0].start()
    for proc in third.values():
        proc.wait_ready()
    load.wait()
    evidence.sent(load.webhooks.values())

    books = close_books(
        plan.scenario,
        pipeline,
        receiver,
        ledger,
        load.sent(),
        load.accepted(),
        settle_timeout_s=240,
        members_killed=True,
        notes={"statuses": load.statuses(), "killed": killed, "resent_across_instances": len(load.crossed)},
        effects=lambda: stores.effects(receiver),
    )
    assert books.row.ok, books.explain()

    in_kafka = event_ids(read_all(pipeline.bootstrap, pipeline.topic))
    resent = load.crossed & load.accepted()
    assert resent, "no delivery was resent across instances"
    doubled = sorted(e for e in resent if in_kafka[e] != 1)
    assert not doubled, (
        f"deliveries resent to the other instance left {len(doubled)} extra records: {doubled[:3]}"
    )

    # At most one notification in flight per workspace chain when a notifier member was killed.
    bound = killed["notifier"] * len(WORKSPACES)
    assert books.row.crash_window <= bound, (books.row.crash_window, bound)

    verify = pipeline.cli("archive", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    lag = wait_caught_up(pipeline, GROUPS)
    assert not any(lag.values()), f"lag left after scaling: {lag}"
