"""The archiver on a real S3-compatible server (s3proxy): every record in exactly one object
through a rebalance between members with separate data directories, an outage of the endpoint,
and kill -9 during uploads and rolls; `archive verify` reads the bucket back."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import pytest

from consumers.archive.storage import open_storage
from consumers.archive.verify import VerifyReport, verify
from consumers.archiver import Archiver
from consumers.runtime import Member
from hookstream.settings import Settings
from hookstream_dev.process import free_port_block
from hookstream_dev.s3proxy import S3Proxy
from tests.integration.consumers.consumer_helpers import (
    HOOKSTREAM,
    Process,
    Running,
    committed_and_ends,
    envelope,
    fast,
    produce,
    sample,
    unique,
    wait_until,
)


def _archive_settings(settings: Settings, url: str, data_dir: Path | None = None) -> Settings:
    """Quick settings (a group prefix of their own), archiving to `url` in objects that roll often."""
    return fast(
        settings,
        archive_url=url,
        archive_max_age_s=1.0,
        archive_max_bytes=16384,
        data_dir=data_dir or settings.data_dir,
    )


def _member(settings: Settings, group: str) -> Running:
    return Running(Member(settings, group, Archiver(settings)))


def _all_durable(settings: Settings, group: str) -> bool:
    committed, ends = committed_and_ends(settings, settings.consumer_group_prefix + group)
    return committed == ends


def _exactly_once(settings: Settings, events: int) -> VerifyReport:
    report = verify(open_storage(settings), settings.topic)
    assert report.ok, list(report.lines())
    assert sum(p.records for p in report.partitions.values()) == events, list(report.lines())
    assert all(not p.gaps for p in report.partitions.values()), list(report.lines())
    return report


def test_two_members_with_their_own_data_dirs_share_the_work_through_a_rebalance(
    settings: Settings, s3_archive_url: str, tmp_path: Path
) -> None:
    group = unique("archiver")
    first_settings = _archive_settings(settings, s3_archive_url, tmp_path / "one")
    second_settings = replace(first_settings, data_dir=tmp_path / "two")  # same group prefix

    def trickle() -> None:  # records keep coming while the partitions move
        for start in range(0, 1200, 40):
            produce(first_settings, [envelope(n) for n in range(start, start + 40)])
            time.sleep(0.1)

    load = threading.Thread(target=trickle)
    first = _member(first_settings, group)
    second: Running | None = None
    load.start()
    try:
        wait_until(lambda: sample("hookstream_consumer_messages_processed_total", group=group) >= 200)
        second = _member(second_settings, group)  # joins mid-stream: partitions move
        wait_until(lambda: sample("hookstream_consumer_rebalances_total", group=group, kind="revoke") >= 1)
        load.join(120)
        wait_until(lambda: _all_durable(first_settings, group), 120, "every offset committed")
    finally:
        load.join(120)
        first.stop()
        if second is not None:
            second.stop()
    assert first.error is None and second is not None and second.error is None
    _exactly_once(first_settings, 1200)


@pytest.fixture
def own_s3proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Proxy]:
    """An s3proxy of this test's own, which it may stop and start again."""
    server = S3Proxy(tmp_path / "s3")
    server.start()
    for name, value in server.environment().items():
        monkeypatch.setenv(name, value)
    boto3.client("s3").create_bucket(Bucket="outage")
    try:
        yield server
    finally:
        server.stop()


def test_an_endpoint_outage_holds_offsets_back_and_loses_or_doubles_nothing(
    settings: Settings, own_s3proxy: S3Proxy
) -> None:
    group = unique("archiver")
    settings = _archive_settings(settings, "s3://outage/a")
    member = _member(settings, group)
    try:
        produce(settings, [envelope(n) for n in range(300)])
        wait_until(lambda: _all_durable(settings, group), 120, "the first records archived")
        own_s3proxy.stop()
        produce(settings, [envelope(n) for n in range(300, 600)])
        wait_until(lambda: sample("hookstream_consumer_messages_processed_total", group=group) >= 600)
        time.sleep(3)  # objects roll and their uploads fail
        committed, ends = committed_and_ends(settings, settings.consumer_group_prefix + group)
        assert sum(ends) - sum(committed) > 0  # processed, not durable: the committed lag shows it
        not_durable = sum(
            sample(
                "hookstream_consumer_not_durable_messages",
                group=group,
                topic=settings.topic,
                partition=str(p),
            )
            for p in range(4)
        )
        assert not_durable > 0
        assert member.thread.is_alive()
        own_s3proxy.start()
        wait_until(lambda: _all_durable(settings, group), 120, "the rest archived once the endpoint is back")
    finally:
        member.stop()
    assert member.error is None
    _exactly_once(settings, 600)


def _object_count(settings: Settings) -> int:
    return sum(1 for _ in open_storage(settings).keys(f"{settings.topic}/"))


def test_kill_9_during_uploads_and_rolls_leaves_each_record_in_one_object(
    settings: Settings, s3proxy: S3Proxy, s3_archive_url: str, tmp_path: Path
) -> None:
    settings = _archive_settings(settings, s3_archive_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOOKSTREAM_", "PROMETHEUS_"))}
    env |= {
        **s3proxy.environment(),
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "HOOKSTREAM_TOPIC": settings.topic,
        "HOOKSTREAM_DLQ_TOPIC": settings.dlq_topic,
        "HOOKSTREAM_DATA_DIR": str(settings.data_dir),
        "HOOKSTREAM_CONSUMER_GROUP_PREFIX": settings.consumer_group_prefix,
        "HOOKSTREAM_CONSUMER_BATCH_SIZE": "25",
        "HOOKSTREAM_CONSUMER_SESSION_TIMEOUT_MS": "6000",
        "HOOKSTREAM_ARCHIVE_URL": s3_archive_url,
        # Small objects: an upload or a roll is nearly always under way when the kill lands.
        "HOOKSTREAM_ARCHIVE_MAX_BYTES": "4096",
        "HOOKSTREAM_ARCHIVE_MAX_AGE_S": "1",
    }
    events = 3000
    produce(settings, [envelope(n) for n in range(events)])
    ports = iter(range(free_port_block(5), 10**6))
    member = Process("archiver", env, tmp_path / "archiver.log", next(ports))
    try:
        for kill in range(3):
            target = _object_count(settings) + 5
            wait_until(lambda: _object_count(settings) > target, 120, f"uploads before kill {kill}")  # noqa: B023
            member.popen.send_signal(signal.SIGKILL)
            member.popen.wait(10)
            member = Process("archiver", env, tmp_path / "archiver.log", next(ports))
        wait_until(lambda: _all_durable(settings, "archiver"), 180, "every offset committed")
    finally:
        member.popen.send_signal(signal.SIGTERM)
        code = member.popen.wait(30)
    assert code == 0, (tmp_path / "archiver.log").read_text()[-2000:]
    _exactly_once(settings, events)
    verified = subprocess.run(
        [HOOKSTREAM, "archive", "verify"], env=env, capture_output=True, text=True, check=False
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"{events} records" in verified.stdout and "duplicates: none" in verified.stdout
