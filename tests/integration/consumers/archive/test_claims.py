"""The archiver's claims in a child process, against both state stores (SQLite, a real Redis): the
second copies the store's claims make, from a spawned process of its own that close() ends; a
child killed or stuck fails that claim (StateStoreUnavailable) and the next claim starts another;
the store's errors come back as StateStoreUnavailable and the child serves on; the signal that
stops the member's group leaves the child to answer the last claim. (The child's own mechanics,
with a server of the test's own: test_child.py.)"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import psutil
import pytest
import redis

from consumers.archive.child import ChildFailed
from consumers.archive.claims import ClaimProcess
from hookstream.errors import StateStoreUnavailable
from hookstream.settings import Settings
from hookstream.state import STATE_FILE, open_store, state_key
from hookstream_dev.process import free_port_block


@pytest.fixture
def claim_process(state_settings: Settings) -> Iterator[ClaimProcess]:
    process = ClaimProcess(state_settings)
    try:
        yield process
    finally:
        process.close()


def _keys(settings: Settings, *event_ids: str) -> list[str]:
    return [state_key(settings.topic, "archived", event_id, group="archiver") for event_id in event_ids]


def _gone(process: psutil.Process, within_s: float = 10.0) -> bool:
    """Whether `process` ends within `within_s` (a zombie no one reaps has ended too)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_second_copies_are_the_records_whose_event_id_another_position_holds(
    claim_process: ClaimProcess, state_settings: Settings
) -> None:
    assert claim_process.second_copies([("a", 0, 1), ("b", 0, 2)]) == []
    assert claim_process.second_copies([("c", 1, 1), ("a", 1, 2), ("b", 1, 3)]) == [1, 2]
    assert claim_process.second_copies([("a", 0, 1)]) == []  # a redo of the record archived
    assert claim_process.second_copies([]) == []
    store = open_store(state_settings)  # the claims are in the store itself
    assert [store.get(key) for key in _keys(state_settings, "a", "b", "c")] == ["0:1", "0:2", "1:1"]
    store.close()


def test_the_child_is_a_spawned_process_that_close_ends(
    claim_process: ClaimProcess, state_settings: Settings
) -> None:
    assert claim_process.name == open_store(state_settings).name
    assert claim_process.child.pid is not None  # started with it, before the first claim
    assert claim_process.child.pid != os.getpid()
    claim_process.second_copies([("a", 0, 1)])
    child = psutil.Process(claim_process.child.pid)
    assert child.ppid() == os.getpid()
    assert "spawn_main" in " ".join(child.cmdline())  # a fresh interpreter, not a fork of this one
    claim_process.close()
    assert not child.is_running() and claim_process.child.pid is None
    claim_process.close()  # a second close is no error


def _member(settings: Settings) -> tuple[subprocess.Popen[str], psutil.Process]:
    """A member in a process group of its own, with its claims process: it waits for SIGTERM (a
    graceful stop), then makes its last batch's claim and prints the answer."""
    args = [settings.topic, settings.redis_url or "", str(settings.data_dir)]
    command = [sys.executable, "-c", _MEMBER, *args]
    member = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert member.stdout is not None
    return member, psutil.Process(int(member.stdout.readline()))


_MEMBER = """
import signal
import sys
import time
from pathlib import Path
from consumers.archive.claims import ClaimProcess
from hookstream.settings import Settings

settings = Settings(topic=sys.argv[1], redis_url=sys.argv[2] or None, data_dir=Path(sys.argv[3]))
stopping = []
signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))  # a graceful stop, as the runtime's
claims = ClaimProcess(settings)
print(claims.child.pid, flush=True)
while not stopping:
    time.sleep(0.05)
print(claims.second_copies([("k", 0, 1)]), flush=True)  # the last batch's claim
claims.close()
"""


def test_a_claim_that_finds_the_child_killed_raises_and_the_next_starts_another(
    claim_process: ClaimProcess, state_settings: Settings
) -> None:
    assert claim_process.second_copies([("a", 0, 1)]) == []
    assert claim_process.child.pid is not None
    killed = psutil.Process(claim_process.child.pid)
    killed.kill()  # SIGKILL, as the OOM killer would
    with pytest.raises(StateStoreUnavailable, match="the archive-claims process is gone"):
        claim_process.second_copies([("b", 0, 2)])
    assert not killed.is_running()  # reaped
    assert claim_process.second_copies([("a", 1, 1), ("b", 0, 2)]) == [0]
    assert claim_process.child.pid not in (None, killed.pid)


@contextmanager
def _stalled(settings: Settings) -> Iterator[None]:
    """The store stops answering for a while: another writer holds SQLite's file; Redis sleeps."""
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url)
        sleeper = threading.Thread(target=client.execute_command, args=("DEBUG", "SLEEP", "1.5"))
        sleeper.start()
        time.sleep(0.2)
        try:
            yield
        finally:
            sleeper.join()
            client.close()
    else:
        db = sqlite3.connect(settings.data_dir / STATE_FILE, isolation_level=None)
        db.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")
            db.close()


def test_a_child_that_does_not_answer_in_time_is_killed_and_the_next_claim_starts_another(
    claim_process: ClaimProcess, state_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert claim_process.second_copies([("a", 0, 1)]) == []  # started, its store opened
    assert claim_process.child.pid is not None
    stuck = psutil.Process(claim_process.child.pid)
    with _stalled(state_settings), monkeypatch.context() as patched:
        patched.setattr(claim_process.child, "deadline_s", 0.5)  # below the store's own 2 s
        with pytest.raises(StateStoreUnavailable, match=r"did not answer within 0\.5s"):
            claim_process.second_copies([("b", 0, 2)])
        assert not stuck.is_running()
    # Back at its own deadline, the next claim leaves a new child the time to start.
    assert claim_process.second_copies([("a", 1, 1), ("b", 0, 2)]) == [0]
    assert claim_process.child.pid not in (None, stuck.pid)


def test_a_store_that_fails_in_the_child_raises_state_store_unavailable(
    state_settings: Settings, tmp_path: Path
) -> None:
    if state_settings.redis_url:  # nothing listens there
        broken = replace(state_settings, redis_url=f"redis://127.0.0.1:{free_port_block(1)}/0")
    else:  # the data dir cannot be created under a file
        (tmp_path / "file-not-dir").write_text("")
        broken = replace(state_settings, data_dir=tmp_path / "file-not-dir" / "data")
    claim_process = ClaimProcess(broken)
    try:
        for _ in range(2):
            with pytest.raises(StateStoreUnavailable) as raised:
                claim_process.second_copies([("k", 0, 1)])
            assert str(raised.value).startswith(claim_process.name)  # the store's own message
            assert "claims process" not in str(raised.value)
        served = claim_process.child.pid
        assert served is not None and psutil.Process(served).is_running()  # one child served both
    finally:
        claim_process.close()


def test_a_bug_in_the_child_is_child_failed_in_its_words_and_the_child_serves_on(
    claim_process: ClaimProcess,
) -> None:
    """An error that is not the store's outage (here a malformed copy) stays a bug (ChildFailed),
    which stops the archiver rather than being waited out. The same child answers the next claim."""
    assert claim_process.second_copies([("a", 0, 1)]) == []
    served = claim_process.child.pid
    with pytest.raises(ChildFailed, match=r"archive-claims process: ValueError: not enough values to unpack"):
        claim_process.second_copies([("b", 0)])  # type: ignore[list-item]
    assert claim_process.second_copies([("a", 0, 1), ("a", 0, 2)]) == [1]
    assert claim_process.child.pid == served


def test_the_signal_that_stops_the_members_group_leaves_the_child_to_answer_its_last_claim(
    state_settings: Settings,
) -> None:
    """Honcho, Kubernetes and a terminal stop the member's whole process group; the member then
    finishes its batch, whose claim the child must still answer."""
    member, child = _member(state_settings)
    try:
        assert member.stdout is not None
        os.killpg(member.pid, signal.SIGTERM)
        assert member.stdout.readline().strip() == "[]"  # answered: a first copy
        assert member.wait(30) == 0
    finally:
        member.kill()
        member.wait()
    assert _gone(child)
