"""Producer dedupe across workers and instances, through the CLI as an operator runs it.

Issue 16's scenario: the same signed Fast.io delivery POSTed again and again, alternating
between two producer instances (two gunicorn servers, each with two workers, each with a data
dir of its own) that share one Redis, answers 200 every time and leaves ONE record in Kafka;
copies sent all at once do too. A single instance with two workers does the same on the
embedded SQLite store.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from hookstream.settings import Settings
from hookstream_dev.redis import LocalRedis
from tests.faults.harness.kafka_reader import event_ids, read_all
from tests.faults.harness.load import Attempt, post
from tests.faults.harness.processes import Pipeline, Proc
from tests.faults.harness.webhooks import SigningKeys, Webhook, fastio_webhook


def _pipeline(settings: Settings, workdir: Path, **env: str) -> Pipeline:
    # A worker's first record waits for Kafka's metadata and connections: on a loaded 2-core box
    # that can exceed the 2 s default, and a 503 here would be about Kafka, not dedupe.
    env.setdefault("HOOKSTREAM_KAFKA_DELIVERY_TIMEOUT_S", "20")
    return Pipeline(
        workdir, settings.kafka_bootstrap_servers, settings.topic, settings.dlq_topic, SigningKeys.generate(),
        extra_env=env,
    )  # fmt: skip


def _deliver(producer: Proc, hook: Webhook) -> Attempt:
    with requests.Session() as session:  # a new connection each time: any worker may take it
        return post(session, producer.base_url, hook, timeout_s=30)


def _at_once(producers: list[Proc], hook: Webhook, copies: int) -> list[Attempt]:
    with ThreadPoolExecutor(copies) as pool:
        return list(pool.map(lambda n: _deliver(producers[n % len(producers)], hook), range(copies)))


def _records_of(settings: Settings, hooks: list[Webhook]) -> dict[str, int]:
    counts = event_ids(read_all(settings.kafka_bootstrap_servers, settings.topic, timeout_s=30))
    return {hook.event_id: counts[hook.event_id] for hook in hooks}


@pytest.fixture
def pipelines() -> Iterator[list[Pipeline]]:
    started: list[Pipeline] = []
    yield started
    for pipeline in started:
        pipeline.stop()


def test_two_instances_sharing_redis_produce_a_delivery_once(
    settings: Settings, redis_server: LocalRedis, tmp_path: Path, pipelines: list[Pipeline]
) -> None:
    pipeline = _pipeline(settings, tmp_path, HOOKSTREAM_REDIS_URL=redis_server.url)
    pipelines.append(pipeline)
    instances = [
        pipeline.producer(workers=2, HOOKSTREAM_DATA_DIR=str(tmp_path / f"instance-{n}")) for n in (1, 2)
    ]
    retried = fastio_webhook(pipeline.keys.fastio)
    answers = [_deliver(instances[n % 2], retried) for n in range(6)]  # a sender retrying, alternating
    assert [a.status for a in answers] == [200] * 6, answers
    assert [a.duplicate for a in answers] == [False] + [True] * 5

    together = fastio_webhook(pipeline.keys.fastio, n=1)
    answers = _at_once(instances, together, copies=6)  # copies in flight at once on both instances
    assert [a.status for a in answers] == [200] * 6, answers
    assert sorted(a.duplicate for a in answers) == [False] + [True] * 5

    assert _records_of(settings, [retried, together]) == {retried.event_id: 1, together.event_id: 1}
    ready = requests.get(instances[0].base_url + "/readyz", timeout=10).json()
    assert ready["state_store"] == {"store": redis_server.url, "status": "ok"}


def test_one_instance_with_two_workers_on_the_embedded_store_produces_once(
    settings: Settings, tmp_path: Path, pipelines: list[Pipeline]
) -> None:
    pipeline = _pipeline(settings, tmp_path)
    pipelines.append(pipeline)
    producer = pipeline.producer(workers=2)
    retried = fastio_webhook(pipeline.keys.fastio)
    answers = [_deliver(producer, retried) for _ in range(6)]
    assert [a.status for a in answers] == [200] * 6, answers
    together = fastio_webhook(pipeline.keys.fastio, n=1)
    assert [a.status for a in _at_once([producer], together, copies=6)] == [200] * 6
    assert (tmp_path / "data" / "state.sqlite3").exists()  # the state both workers shared
    assert _records_of(settings, [retried, together]) == {retried.event_id: 1, together.event_id: 1}


def test_redis_down_the_producer_still_accepts(
    settings: Settings, tmp_path: Path, pipelines: list[Pipeline]
) -> None:
    """Dedupe is an optimisation: with its store unreachable every delivery is produced, none fails."""
    pipeline = _pipeline(settings, tmp_path, HOOKSTREAM_REDIS_URL="redis://127.0.0.1:9/0")  # nothing on 9
    pipelines.append(pipeline)
    producer = pipeline.producer(workers=1)
    hook = fastio_webhook(pipeline.keys.fastio)
    answers = [_deliver(producer, hook) for _ in range(3)]
    assert [a.status for a in answers] == [200] * 3, answers
    assert _records_of(settings, [hook]) == {hook.event_id: 3}  # produced each time, not lost
    metrics = requests.get(producer.base_url + "/metrics", timeout=10).text
    assert _sample(metrics, "hookstream_dedupe_store_errors_total") >= 3
    ready = requests.get(producer.base_url + "/readyz", timeout=10)
    assert ready.status_code == 200  # readiness is Kafka's; the store is only reported
    assert ready.json()["state_store"]["status"] == "unavailable"
    assert ready.json()["state_store"]["store"] == "redis://127.0.0.1:9/0"


def _sample(exposition: str, name: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} is not exported")
