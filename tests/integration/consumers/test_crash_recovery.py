"""The three groups as real `hookstream consume` processes under load: SIGKILL each in
the middle of its work, restart it, and every event has exactly one effect — one index row,
one archive record, one notification at a loopback receiver — with nothing lost."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from consumers.archive.storage import open_storage
from consumers.archive.verify import verify
from consumers.index.sqlite import index_path
from consumers.notifier import SENDERS
from hookstream.settings import Settings
from hookstream_dev.process import free_port_block
from tests.integration.consumers.consumer_helpers import (
    Process,
    Receiver,
    committed_and_ends,
    envelope,
    fast,
    produce,
    wait_until,
)

EVENTS = 3000
GROUPS = ("indexer", "archiver", "notifier")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _env(settings: Settings, receiver: Receiver) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKSTREAM_", "PROMETHEUS_"))}
    return {
        **env,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "HOOKSTREAM_TOPIC": settings.topic,
        "HOOKSTREAM_DLQ_TOPIC": settings.dlq_topic,
        "HOOKSTREAM_DATA_DIR": str(settings.data_dir),
        "HOOKSTREAM_CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix,
        "HOOKSTREAM_CONSUMER_BATCH_SIZE": "25",
        "HOOKSTREAM_CONSUMER_SESSION_TIMEOUT_MS": "6000",
        "HOOKSTREAM_NOTIFY_URL": receiver.url,
        "HOOKSTREAM_ARCHIVE_MAX_AGE_S": "1",
        "HOOKSTREAM_ARCHIVE_MAX_BYTES": "65536",
    }


def _index_rows(settings: Settings) -> list[str]:
    path = index_path(settings)
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT object_id FROM files WHERE deleted = 0")]
    except sqlite3.OperationalError:  # the schema is not there yet
        return []
    finally:
        db.close()


def _archived(settings: Settings) -> int:
    return sum(p.records for p in verify(open_storage(settings), settings.topic).partitions.values())


def test_members_killed_mid_batch_lose_nothing_and_repeat_no_effect(
    settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    settings = fast(settings)
    env = _env(settings, receiver)
    progress: dict[str, Callable[[], int]] = {
        "indexer": lambda: len(_index_rows(settings)),
        "archiver": lambda: _archived(settings),
        "notifier": lambda: len(set(receiver.keys)),
    }
    ports = iter(range(free_port_block(6), 10**6))
    members = {g: Process(g, env, tmp_path / f"{g}.log", next(ports)) for g in GROUPS}

    # A backlog arrives faster than any group works through it, so each member is in the
    # middle of its batches, busy, when it is killed.
    load = threading.Thread(target=produce, args=(settings, [envelope(n) for n in range(EVENTS)]))
    load.start()
    killed_at: dict[str, int] = {}
    try:
        while len(killed_at) < len(GROUPS):
            for group in GROUPS:
                if group not in killed_at and progress[group]() >= EVENTS // 10:
                    members[group].popen.send_signal(signal.SIGKILL)
                    members[group].popen.wait(10)
                    killed_at[group] = progress[group]()
                    members[group] = Process(group, env, tmp_path / f"{group}.log", next(ports))
            time.sleep(0.05)
        load.join(60)
        for group in GROUPS:
            wait_until(lambda g=group: progress[g]() >= EVENTS, 120, f"{group} to catch up")
        wait_until(
            lambda: members["indexer"].metric("hookstream_consumer_lag_messages") == [0.0] * 4, 30, "lag 0"
        )
    finally:
        load.join(60)
        for member in members.values():
            member.popen.send_signal(signal.SIGTERM)
        exit_codes = {g: m.popen.wait(30) for g, m in members.items()}

    assert all(0 < killed_at[g] < EVENTS for g in GROUPS), killed_at  # killed mid-stream
    assert exit_codes == dict.fromkeys(GROUPS, 0), {
        g: (tmp_path / f"{g}.log").read_text()[-2000:] for g in GROUPS
    }

    rows = _index_rows(settings)
    assert sorted(rows) == sorted(f"obj-{n}" for n in range(EVENTS))  # every file, one row each

    report = verify(open_storage(settings), settings.topic)
    assert report.ok, list(report.lines())
    assert sum(p.records for p in report.partitions.values()) == EVENTS
    assert all(not p.gaps and not p.duplicates for p in report.partitions.values()), list(report.lines())

    assert set(receiver.keys) == {f"evt-{n}" for n in range(EVENTS)}
    # The sent record stops every repeat except, at most, the requests in flight when the notifier
    # was killed: one per workspace chain (its Idempotency-Key lets a receiver drop it).
    assert len(receiver.keys) - EVENTS <= SENDERS

    for group in GROUPS:
        committed, ends = committed_and_ends(settings, settings.consumer_group_prefix + group)
        assert committed == ends, group
