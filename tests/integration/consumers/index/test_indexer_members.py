"""Indexer members on one OpenSearch, through Kafka: a refused record goes to the DLQ alone;
two members with separate data directories, one SIGKILLed mid-stream, leave every live file
exactly once in its newest state; OpenSearch stopped mid-stream costs retries, never the DLQ,
and nothing is lost once it is back."""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import KafkaException
from opensearchpy import OpenSearch

from consumers.dlq import read_dead_letters
from consumers.index.opensearch import client
from consumers.indexer import Indexer
from consumers.runtime import Member
from hookstream.settings import Settings
from hookstream_dev.opensearch import LocalOpenSearch
from hookstream_dev.process import free_port_block
from schemas import codec
from tests.faults.harness.processes import HOOKSTREAM, Proc
from tests.fixtures.opensearch import opensearch_home
from tests.integration.consumers.consumer_helpers import (
    Running,
    committed_and_ends,
    fast,
    produce,
    sample,
    unique,
    wait_until,
)

_VERBS = ("added", "updated", "updated", "deleted")
_START = datetime(2026, 1, 1, tzinfo=UTC)


def file_event(n: int, t: int, verb: str, name: str | None = None) -> codec.Envelope:
    """File `n`'s event at `t` ms after the start; its name says which event it was."""
    workspace = f"ws-{n % 8}"
    resource = {"name": name or f"doc-{n}-t{t}.txt", "path": f"/w/doc-{n}-t{t}.txt", "size": t}
    return codec.Envelope(
        event_id=f"evt-{n}-{t}",
        provider="fastio",
        event_type=f"workspace_storage_file_{verb}",
        workspace_id=workspace,
        payload=json.dumps({"object_id": f"obj-{n}", "resource": resource}).encode(),
        received_at=codec.utc_now(),
        object_id=f"obj-{n}",
        occurred_at=_START + timedelta(milliseconds=t),
    )


def history(files: int, seed: int) -> tuple[list[codec.Envelope], dict[str, str]]:
    """Three or four events per file in a random arrival order, and what must be left:
    object_id -> event_id of the newest event of each file whose newest event is not a removal."""
    rng = random.Random(seed)
    events: list[codec.Envelope] = []
    live: dict[str, str] = {}
    for n in range(files):
        times = sorted(rng.sample(range(1, 10**6), rng.choice((3, 4))))
        verbs = ["added", *(rng.choice(_VERBS) for _ in times[1:])]
        for t, verb in zip(times, verbs, strict=True):
            events.append(file_event(n, t, verb))
        if verbs[-1] != "deleted":
            live[f"obj-{n}"] = f"evt-{n}-{times[-1]}"
    rng.shuffle(events)
    return events, live


def live_files(admin: OpenSearch, alias: str) -> list[tuple[str, str]]:
    """(object_id, last_event_id) of every document not a tombstone, as many times as it is there."""
    admin.indices.refresh(index=alias)
    found = admin.search(index=alias, body={"size": 10_000, "query": {"term": {"deleted": False}}})
    return [(hit["_source"]["object_id"], hit["_source"]["last_event_id"]) for hit in found["hits"]["hits"]]


def documents(admin: OpenSearch, alias: str) -> int:
    try:
        admin.indices.refresh(index=alias)  # what was written so far, not what the last refresh saw
        return int(admin.count(index=alias)["count"])
    except Exception:  # not created yet
        return 0


@pytest.fixture
def admin(opensearch_settings: Settings) -> Iterator[OpenSearch]:
    with client(opensearch_settings) as c:
        yield c


def test_a_record_opensearch_refuses_goes_to_the_dlq_alone(
    settings: Settings, opensearch_settings: Settings, admin: OpenSearch
) -> None:
    settings = fast(
        settings,
        opensearch_url=opensearch_settings.opensearch_url,
        opensearch_index=opensearch_settings.opensearch_index,
    )
    good = [file_event(n, 10, "added") for n in range(30)]
    huge = file_event(99, 10, "added", name="x" * 40_000)
    produce(settings, [*good[:15], huge, *good[15:]])
    group = unique("indexer")
    running = Running(Member(settings, group, Indexer(settings)))
    try:
        wait_until(lambda: _caught_up(settings, group), 90, "the group to catch up")
    finally:
        running.stop()
    assert running.error is None
    (letter,) = read_dead_letters(settings)
    assert letter.event_id == huge.event_id and letter.header("dlq.reason") == "permanent"
    assert sorted(o for o, _ in live_files(admin, settings.opensearch_index)) == sorted(
        f"obj-{n}" for n in range(30)
    )


def _caught_up(settings: Settings, group: str) -> bool:
    try:
        committed, ends = committed_and_ends(settings, settings.consumer_group_prefix + group)
    except KafkaException:  # the group coordinator still loading on a fresh broker: ask again
        return False
    return committed == ends and sum(ends) > 0


def test_two_members_one_killed_mid_stream_leave_every_live_file_once_in_its_newest_state(
    settings: Settings, opensearch_settings: Settings, admin: OpenSearch, tmp_path: Path
) -> None:
    settings = fast(settings)
    events, live = history(files=500, seed=7)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKSTREAM_", "PROMETHEUS_"))}

    def member(name: str) -> Proc:
        port = free_port_block(1)
        env = {
            **base,
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "HOOKSTREAM_TOPIC": settings.topic,
            "HOOKSTREAM_DLQ_TOPIC": settings.dlq_topic,
            "HOOKSTREAM_DATA_DIR": str(tmp_path / name),  # nothing shared but OpenSearch and Kafka
            "HOOKSTREAM_CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix,
            "HOOKSTREAM_CONSUMER_BATCH_SIZE": "25",
            "HOOKSTREAM_CONSUMER_SESSION_TIMEOUT_MS": "6000",
            "HOOKSTREAM_OPENSEARCH_URL": opensearch_settings.opensearch_url or "",
            "HOOKSTREAM_OPENSEARCH_INDEX": opensearch_settings.opensearch_index,
            "HOOKSTREAM_METRICS_PORT": str(port),
        }
        argv = [HOOKSTREAM, "consume", "indexer"]
        return Proc(name, argv, env, tmp_path / f"{name}.log", f"http://127.0.0.1:{port}/metrics").start()

    first, second = member("first"), member("second")

    def both_assigned() -> bool:
        rebalances = "hookstream_consumer_rebalances_total"
        return all((p.metric(rebalances, group="indexer", kind="assign") or 0) > 0 for p in (first, second))

    # Both members in the group before the load, and the load spread over ~20 s, so that each
    # is indexing when one is killed, however slowly a loaded machine starts them.
    wait_until(both_assigned, 120, "both members to be assigned partitions")
    load = threading.Thread(target=_paced, args=(settings, events))
    load.start()
    alias = opensearch_settings.opensearch_index

    def both_working() -> bool:
        processed = "hookstream_consumer_messages_processed_total"
        return all((p.metric(processed, group="indexer") or 0) > 0 for p in (first, second))

    try:
        wait_until(both_working, 120, "both members to index")
        written = documents(admin, alias)
        first.kill()
        load.join(120)
        wait_until(lambda: _caught_up(settings, "indexer"), 180, "the survivor to catch up")
    finally:
        load.join(60)
        exit_code = second.stop()
        first.stop()
    assert 0 < written < len(live) + len(events), written  # killed mid-stream
    assert exit_code == 0, second.tail()
    found = live_files(admin, alias)
    assert len(found) == len(set(found))  # once each
    assert dict(found) == live  # every live file, in its newest state; no removed file back
    assert list(read_dead_letters(settings)) == []


def _paced(settings: Settings, events: list[codec.Envelope], chunks: int = 40, pause_s: float = 0.5) -> None:
    step = -(-len(events) // chunks)
    for start in range(0, len(events), step):
        produce(settings, events[start : start + step])
        time.sleep(pause_s)


@pytest.fixture(scope="module")
def own_node() -> Iterator[LocalOpenSearch]:
    """A node of this module's own, to stop and start without disturbing the session's."""
    home = opensearch_home()
    node = LocalOpenSearch(home, port=free_port_block(2))
    try:
        node.start()
        yield node
    finally:
        node.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.timeout(1800)  # two node starts: minutes each on a loaded 2-core box
def test_opensearch_stopped_mid_stream_costs_retries_not_the_dlq(
    settings: Settings, own_node: LocalOpenSearch
) -> None:
    settings = fast(
        settings,
        opensearch_url=own_node.url,
        opensearch_index=unique("files"),
        retry_max_attempts=1000,
        retry_max_seconds=600.0,
    )
    events, live = history(files=200, seed=11)
    half = len(events) // 2
    produce(settings, events[:half])
    group = unique("indexer")
    running = Running(Member(settings, group, Indexer(settings)))
    admin = client(settings)
    try:
        wait_until(lambda: documents(admin, settings.opensearch_index) > 0, 60, "the first documents")
        own_node.stop()
        produce(settings, events[half:])
        wait_until(lambda: sample("hookstream_consumer_retries_total", group=group) >= 2, 120, "retries")
        own_node.start(timeout_s=900)
        wait_until(lambda: _caught_up(settings, group), 300, "the member to catch up")
    finally:
        running.stop(120)
    assert running.error is None
    assert list(read_dead_letters(settings)) == []
    found = live_files(admin, settings.opensearch_index)
    assert len(found) == len(set(found)) and dict(found) == live
    admin.close()
