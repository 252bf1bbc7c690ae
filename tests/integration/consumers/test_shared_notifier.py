"""Two notifier members on two "hosts" (separate data dirs) sharing one Redis, under a steady
stream, one of them SIGKILLed and rescheduled onto a fresh data dir as a pod moving host is.

Issue 16 measured 65 repeated notifications in this scenario while sent records lived in each
member's data dir. With them in Redis, the only repeats allowed are the documented crash window:
a request in flight when the member died (at most one per sender thread), and each repeat
carries the same `Idempotency-Key`, so a receiver honouring it sees every event exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.notifier import SENDERS
from hookstream.settings import Settings
from hookstream_dev.redis import LocalRedis
from tests.faults.harness.load import LoadGenerator, wait_for_status
from tests.faults.harness.processes import Pipeline
from tests.faults.harness.receiver import NotificationReceiver
from tests.faults.harness.webhooks import SigningKeys, fastio_webhook

pytestmark = pytest.mark.timeout(420)

EVENTS = 240


@pytest.fixture
def receiver() -> Iterator[NotificationReceiver]:
    with NotificationReceiver() as running:
        yield running


def test_members_on_separate_hosts_sharing_redis_notify_each_event_once(
    settings: Settings, redis_server: LocalRedis, receiver: NotificationReceiver, tmp_path: Path
) -> None:
    receiver.delay_s = 0.02  # batches stay open long enough for the kill to land mid-batch
    keys = SigningKeys.generate()
    pipeline = Pipeline(
        tmp_path, settings.kafka_bootstrap_servers, settings.topic, settings.dlq_topic, keys,
        notify_url=receiver.url,
        extra_env={
            "HOOKSTREAM_REDIS_URL": redis_server.url,
            "HOOKSTREAM_CONSUMER_BATCH_SIZE": "20",
            "HOOKSTREAM_CONSUMER_SESSION_TIMEOUT_MS": "6000",  # the dead member's partitions move soon
        },
    )  # fmt: skip
    try:
        producer = pipeline.producer(workers=1)
        first, second = (
            pipeline.member("notifier", wait=False, HOOKSTREAM_DATA_DIR=str(tmp_path / f"host-{n}"))
            for n in (1, 2)
        )
        first.wait_ready()
        second.wait_ready()
        wait_for_status(producer.base_url + "/readyz")
        load = LoadGenerator(
            producer.base_url, lambda n: fastio_webhook(keys.fastio, n), count=EVENTS, rate_per_s=12
        ).start()
        _wait(lambda: len(receiver.event_ids()) >= EVENTS // 3, "a third of the stream notified")
        first.kill()  # kill -9 mid-stream
        moved = pipeline.member("notifier", wait=False, HOOKSTREAM_DATA_DIR=str(tmp_path / "host-3"))
        moved.wait_ready()
        load.wait()
        accepted = load.accepted()
        assert len(accepted) == EVENTS, load.statuses()
        _wait(lambda: accepted <= set(receiver.event_ids()), "every accepted event notified", 180)
        time.sleep(3)  # anything still to come (a late repeat) arrives now
    finally:
        pipeline.stop()

    counts = receiver.event_ids(honour_keys=True)
    assert set(counts) == accepted
    assert max(counts.values()) == 1, {e: c for e, c in counts.items() if c > 1}  # once per key
    assert receiver.keys_missing() == 0
    assert receiver.raw_repeats() <= SENDERS, receiver.raw_repeats()  # the crash window only


def _wait(check, what: str, timeout_s: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
