"""producer.group_commit on the real SQLite store: concurrent claims share store calls, each key is
won once, acks land (at the latest when it closes), a failing store is reported, and under
gevent's patching the writer is a greenlet that answers greenlets."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from hookstream.errors import StateStoreUnavailable
from hookstream.state.sqlite import SqliteStore
from producer.group_commit import GroupCommit


class CountingStore(SqliteStore):
    """The real store, counting its batched calls."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, timeout_s=2.0)
        self.claim_calls = 0

    def claim_many(self, keys: Sequence[str], ttl_s: float, values: Sequence[str]) -> list[str]:
        self.claim_calls += 1
        return super().claim_many(keys, ttl_s, values)


def _commit(store: SqliteStore, errors: list[StateStoreUnavailable] | None = None) -> GroupCommit:
    report = errors.append if errors is not None else lambda exc: None
    return GroupCommit(store, claim_ttl_s=60, acked="acked", ack_ttl_s=60, wait_s=5, on_error=report)


def _in_threads(count: int, work: object) -> list[object]:
    results: list[object] = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        barrier.wait()
        results[index] = work(index)  # type: ignore[operator]

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_claims_share_store_calls_and_each_is_answered(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "state.sqlite3")
    commit = _commit(store)
    added = _in_threads(40, lambda index: commit.add(f"k{index}", f"pending:{index}"))
    assert added == [True] * 40
    assert 0 < store.claim_calls < 40
    assert store.get("k7") == "pending:7"


def test_one_of_many_copies_wins_a_key(tmp_path: Path) -> None:
    commit = _commit(SqliteStore(tmp_path / "state.sqlite3", 2.0))
    added = _in_threads(20, lambda index: commit.add("same", f"pending:{index}"))
    assert added.count(True) == 1


def test_an_ack_overwrites_the_claim_and_close_makes_what_is_queued(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.sqlite3", 2.0)
    commit = _commit(store)
    assert commit.add("k", "pending:t")
    commit.ack_later("k")
    commit.close()
    assert store.get("k") == "acked"
    assert commit.add("k", "pending:u") is False  # a new writer starts on demand after close


def test_a_store_that_fails_raises_for_claims_and_reports_acks(tmp_path: Path) -> None:
    (tmp_path / "state.sqlite3").mkdir()  # a directory where the file should be: every call fails
    errors: list[StateStoreUnavailable] = []
    commit = _commit(SqliteStore(tmp_path / "state.sqlite3", 0.2), errors)
    with pytest.raises(StateStoreUnavailable):
        commit.add("k", "pending:t")
    commit.ack_later("k")
    commit.close()
    assert len(errors) == 1


GEVENT_WORKER = """
from gevent import monkey
monkey.patch_all()
import sys, gevent
from pathlib import Path
from hookstream.state.sqlite import SqliteStore
from producer.group_commit import GroupCommit

store = SqliteStore(Path(sys.argv[1]), 2.0)
commit = GroupCommit(store, 60, "acked", 60, 5, on_error=print)
greenlets = [gevent.spawn(commit.add, f"k{i % 50}", f"pending:{i}") for i in range(100)]
gevent.joinall(greenlets, timeout=20)
answers = [g.value for g in greenlets]
assert answers.count(True) == 50 and answers.count(False) == 50, answers
commit.ack_later("k1")
commit.close()
assert store.get("k1") == "acked"
print("ok")
"""


def test_under_gevent_greenlets_claim_through_a_greenlet_writer(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", GEVENT_WORKER, str(tmp_path / "state.sqlite3")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]


def test_a_key_that_already_holds_the_claims_value_is_won(tmp_path: Path) -> None:
    # As when the Redis client repeats a claim whose reply was lost: the repeat finds its own value.
    store = SqliteStore(tmp_path / "state.sqlite3", timeout_s=2.0)
    store.add("k", 60, "pending:mine")
    commit = _commit(store)
    assert commit.add("k", "pending:mine") is True
    assert commit.add("k", "pending:other") is False
    commit.close()


def test_acks_the_store_failed_to_take_are_written_with_the_next_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SqliteStore(tmp_path / "state.sqlite3", timeout_s=2.0)
    errors: list[StateStoreUnavailable] = []
    commit = _commit(store, errors)
    real_put_many = store.put_many

    def fails_once(*args: object, **kwargs: object) -> None:
        monkeypatch.setattr(store, "put_many", real_put_many)
        raise StateStoreUnavailable("a brief outage")

    monkeypatch.setattr(store, "put_many", fails_once)
    assert commit.add("a", "pending:a")
    commit.ack_later("a")
    _wait_for(lambda: bool(errors))
    assert store.get("a") == "pending:a"
    assert commit.add("b", "pending:b")  # the next batch
    assert store.get("a") == "acked"
    commit.close()


def _wait_for(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)
