"""The producer's event_id window on the shared state store, against both backends: one record
per event across workers and processes, even for copies arriving together, and never a
failure because of the store."""

from __future__ import annotations

import logging
import multiprocessing
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import REGISTRY

from hookstream.settings import Settings
from hookstream.state import open_store
from hookstream_dev.process import free_port_block
from hookstream_dev.redis import LocalRedis
from producer.dedupe import Claim, Deduper, build_deduper


@pytest.fixture
def dedupe(state_settings: Settings) -> Iterator[Deduper]:
    deduper = build_deduper(state_settings)
    try:
        yield deduper
    finally:
        deduper.close()


def _worker(settings: Settings) -> Deduper:
    """Another worker's deduper: its own store client, the same state."""
    return build_deduper(settings)


def test_an_accepted_event_is_seen_until_the_window_ends(state_settings: Settings) -> None:
    dedupe = build_deduper(replace(state_settings, dedupe_window_s=0.5))
    assert dedupe.claim("fastio:e1", 1) is Claim.OWNER
    dedupe.settle("fastio:e1", accepted=True)
    assert dedupe.claim("fastio:e1", 1) is Claim.SEEN
    assert _worker(state_settings).claim("fastio:e1", 1) is Claim.SEEN  # another worker sees it too
    time.sleep(0.8)
    assert dedupe.claim("fastio:e1", 1) is Claim.OWNER


def test_a_failed_owner_releases_its_claim(dedupe: Deduper) -> None:
    assert dedupe.claim("k", 1) is Claim.OWNER
    dedupe.settle("k", accepted=False)
    assert dedupe.claim("k", 1) is Claim.OWNER


def test_a_zero_window_turns_dedupe_off(state_settings: Settings) -> None:
    dedupe = build_deduper(replace(state_settings, dedupe_window_s=0))
    assert dedupe.claim("k", 1) is Claim.OWNER
    assert dedupe.claim("k", 1) is Claim.OWNER
    dedupe.settle("k", accepted=True)
    assert dedupe.claim("k", 1) is Claim.OWNER


def test_events_are_namespaced_by_topic(state_settings: Settings) -> None:
    one = build_deduper(state_settings)
    other = build_deduper(replace(state_settings, topic=state_settings.topic + "-other"))
    assert one.claim("k", 1) is Claim.OWNER
    one.settle("k", accepted=True)
    assert other.claim("k", 1) is Claim.OWNER


class _Copies:
    """`count` copies of `key` claimed at once from threads of other workers, each waiting up to `wait_s`."""

    def __init__(self, settings: Settings, key: str, count: int, wait_s: float) -> None:
        self.results: list[Claim] = []
        self._threads = [
            threading.Thread(target=lambda: self.results.append(_worker(settings).claim(key, wait_s)))
            for _ in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def join(self) -> list[Claim]:
        for thread in self._threads:
            thread.join(30)
        return self.results


def test_copies_in_flight_wait_for_the_owners_ack(dedupe: Deduper, state_settings: Settings) -> None:
    assert dedupe.claim("k", 1) is Claim.OWNER
    copies = _Copies(state_settings, "k", count=5, wait_s=20)
    time.sleep(0.5)
    assert copies.results == []  # nobody answered before the owner's record was acknowledged
    dedupe.settle("k", accepted=True)
    assert copies.join() == [Claim.SEEN] * 5


def test_copies_in_flight_fail_with_the_owner_and_the_retry_produces(
    dedupe: Deduper, state_settings: Settings
) -> None:
    assert dedupe.claim("k", 1) is Claim.OWNER
    copies = _Copies(state_settings, "k", count=3, wait_s=20)
    time.sleep(0.3)
    dedupe.settle("k", accepted=False)
    assert copies.join() == [Claim.FAILED] * 3
    assert _worker(state_settings).claim("k", 1) is Claim.OWNER


def test_a_copy_whose_wait_runs_out_fails_and_others_still_see_the_ack(
    dedupe: Deduper, state_settings: Settings
) -> None:
    assert dedupe.claim("k", 1) is Claim.OWNER
    patient = _Copies(state_settings, "k", count=1, wait_s=20)
    assert _worker(state_settings).claim("k", 0.1) is Claim.FAILED
    dedupe.settle("k", accepted=True)
    assert patient.join() == [Claim.SEEN]


def test_a_claim_made_after_its_wait_ran_out_is_still_released(
    dedupe: Deduper, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = dedupe.store.claim_many
    landed = threading.Event()

    def slow(*args: Any, **kwargs: Any) -> list[str]:
        time.sleep(1.5)  # past the claim's wait (1 s): the copy produces without dedupe
        try:
            return real(*args, **kwargs)
        finally:
            landed.set()

    monkeypatch.setattr(dedupe.store, "claim_many", slow)
    assert dedupe.claim("k", 1) is Claim.OWNER
    dedupe.settle("k", accepted=False)  # Kafka did not take it
    assert landed.wait(5)
    deadline = time.monotonic() + 5
    stored = dedupe._key("k")
    while dedupe.store.get(stored) is not None:  # freed after the late claim, not left pending
        assert time.monotonic() < deadline, f"the key still holds {dedupe.store.get(stored)!r}"
        time.sleep(0.05)


def test_an_owner_that_died_frees_its_event_after_the_claim_ttl(state_settings: Settings) -> None:
    dying = Deduper(open_store(state_settings), state_settings.topic, 600, claim_ttl_s=0.3)
    assert dying.claim("k", 1) is Claim.OWNER  # and never settles, as after kill -9
    assert _worker(state_settings).claim("k", 0.05) is Claim.FAILED
    time.sleep(0.5)
    assert _worker(state_settings).claim("k", 1) is Claim.OWNER


def _claim_all(settings: Settings, keys: list[str], start: threading.Barrier, out: Path) -> None:
    dedupe = build_deduper(settings)
    start.wait()
    owned = []
    for key in keys:
        if dedupe.claim(key, 10) is Claim.OWNER:
            owned.append(key)
            dedupe.settle(key, accepted=True)
    out.write_text("\n".join(owned))


def test_worker_processes_produce_each_event_once(state_settings: Settings, tmp_path: Path) -> None:
    keys = [f"fastio:e{i}" for i in range(100)]
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(3)
    outs = [tmp_path / f"owned-{i}" for i in range(3)]
    workers = [context.Process(target=_claim_all, args=(state_settings, keys, start, out)) for out in outs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    owned = [line for out in outs for line in out.read_text().splitlines()]
    assert sorted(owned) == sorted(keys)


def _unreachable(settings: Settings, tmp_path: Path) -> Settings:
    if settings.redis_url:
        return replace(settings, redis_url=f"redis://127.0.0.1:{free_port_block(1)}/0")
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    return replace(settings, data_dir=blocker / "data")


def _store_errors() -> float:
    return REGISTRY.get_sample_value("hookstream_dedupe_store_errors_total") or 0.0


def test_an_unreachable_store_produces_counts_and_logs_once(
    state_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dedupe = build_deduper(_unreachable(state_settings, tmp_path))
    before = _store_errors()
    with caplog.at_level(logging.WARNING, logger="hookstream.producer.dedupe"):
        for _ in range(3):
            assert dedupe.claim("k", 1) is Claim.OWNER
            dedupe.settle("k", accepted=True)
        dedupe.close()  # makes the acks still queued
    # Every store call: each claim (one after another, so one each) and the acks' batches; acks
    # that failed are tried again with each later batch and at close, so up to three calls a
    # claim (its own, the acks with it, an ack-only batch).
    assert 3 + 1 <= _store_errors() - before <= 3 * 3
    assert len(caplog.records) == 1  # once per interval, not once per request
    assert "unavailable" in caplog.records[0].getMessage()


def test_store_status_says_ok_or_why_not_without_raising(state_settings: Settings, tmp_path: Path) -> None:
    healthy = build_deduper(state_settings).store_status()
    assert healthy["status"] == "ok" and healthy["store"].startswith(("redis://", "sqlite:"))
    broken = build_deduper(_unreachable(state_settings, tmp_path)).store_status()
    assert broken["status"] == "unavailable" and broken["detail"]
    assert "password" not in str(broken)


def test_a_stalled_redis_costs_at_most_the_deadline(redis_server: LocalRedis) -> None:
    """Redis stops answering (DEBUG SLEEP): the copy produces after the store's short deadline."""
    settings = Settings(topic=f"stall-{uuid.uuid4().hex[:10]}", redis_url=redis_server.url)
    dedupe = build_deduper(settings)
    assert dedupe.claim("warm", 1) is Claim.OWNER
    stall = redis.Redis.from_url(redis_server.url)
    sleeper = threading.Thread(target=lambda: stall.execute_command("DEBUG", "SLEEP", "2"))
    sleeper.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert dedupe.claim("k", 1) is Claim.OWNER
    elapsed = time.monotonic() - started
    sleeper.join()
    stall.close()
    assert elapsed < 1.8  # answered before Redis woke up
    dedupe.settle("k", accepted=True)  # the late claim is overwritten by the ack
    assert _worker(settings).claim("k", 1) is Claim.SEEN


_UNDER_GEVENT = """
from gevent import monkey

monkey.patch_all()
import sys
from pathlib import Path
import gevent
from hookstream.settings import Settings
from producer.dedupe import Claim, build_deduper

settings = Settings(topic=sys.argv[1], redis_url=sys.argv[2] or None, data_dir=Path(sys.argv[3]))
owner, copies = build_deduper(settings), build_deduper(settings)
assert owner.claim("k", 1) is Claim.OWNER
ticks = []
ticker = gevent.spawn(lambda: [ticks.append(gevent.sleep(0.01)) for _ in range(30)])
waiting = [gevent.spawn(copies.claim, "k", 10) for _ in range(5)]
gevent.sleep(0.2)
assert not any(g.ready() for g in waiting), "a copy answered before the owner settled"
owner.settle("k", accepted=True)
gevent.joinall(waiting, timeout=10)
assert [g.value for g in waiting] == [Claim.SEEN] * 5, [g.value for g in waiting]
ticker.join()
assert len(ticks) == 30  # the hub kept running while five copies waited
print("ok")
"""


def test_copies_wait_cooperatively_under_gevent(state_settings: Settings) -> None:
    """A gevent worker: waiting copies are greenlets that must not block the hub."""
    done = subprocess.run(
        [sys.executable, "-c", _UNDER_GEVENT, state_settings.topic, state_settings.redis_url or "",
         str(state_settings.data_dir)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
