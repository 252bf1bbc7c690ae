"""The child process behind the archiver's claims and uploads, with a server of the test's own: its
answers, errors by type, a failure to open what it serves, a deadline per request, and its end
with the member, even in the middle of a request."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from consumers.archive.child import ChildFailed, ChildProcess
from consumers.errors import TransientError
from hookstream.settings import Settings


@contextmanager
def _serve(settings: Settings) -> Iterator[Callable[[tuple[str, str]], str]]:
    """Answers ("echo", text) with text, ("sleep", seconds) after that long, ("raise", type name)
    by raising it; a data dir named "broken" cannot be opened."""
    if settings.data_dir.name == "broken":
        raise ValueError("cannot open what it serves")

    def answer(request: tuple[str, str]) -> str:
        verb, argument = request
        if verb == "sleep":
            time.sleep(float(argument))
        if verb == "raise":
            raise {"TimeoutError": TimeoutError, "KeyError": KeyError}[argument](argument)
        return argument

    yield answer


def _child(tmp_path: Path, name: str = "data") -> ChildProcess:
    passes = (TransientError, TimeoutError)
    return ChildProcess("test-child", _serve, Settings(data_dir=tmp_path / name), passes, deadline_s=10)


@pytest.fixture
def child(tmp_path: Path) -> Iterator[ChildProcess]:
    process = _child(tmp_path)
    try:
        yield process
    finally:
        process.close()


def test_errors_come_back_by_type_and_the_child_serves_on(child: ChildProcess) -> None:
    assert child.call(("echo", "hello")) == "hello"
    served = child.pid
    with pytest.raises(TimeoutError, match="TimeoutError"):  # a type passed: as it is
        child.call(("raise", "TimeoutError"))
    with pytest.raises(ChildFailed, match="the test-child process: KeyError"):  # any other: a bug
        child.call(("raise", "KeyError"))
    assert child.call(("echo", "again")) == "again" and child.pid == served


def test_a_request_past_its_deadline_is_an_outage_and_the_next_starts_another_child(
    child: ChildProcess,
) -> None:
    stuck = psutil.Process(child.pid)
    with pytest.raises(TransientError, match=r"the test-child process did not answer within 0\.3s"):
        child.call(("sleep", "5"), deadline_s=0.3)
    assert not stuck.is_running()
    assert child.call(("echo", "fresh")) == "fresh"  # not the late answer of the killed one
    assert child.pid not in (None, stuck.pid)


def test_a_child_that_cannot_open_what_it_serves_fails_at_once(tmp_path: Path) -> None:
    with pytest.raises(ChildFailed, match="could not start: ValueError: cannot open what it serves"):
        _child(tmp_path, "broken")
    spawned = [p for p in psutil.Process().children() if "spawn_main" in " ".join(p.cmdline())]
    assert spawned == []  # none left behind


_MEMBER = """
import sys
from pathlib import Path
from consumers.archive.child import ChildProcess
from consumers.errors import TransientError
from hookstream.settings import Settings
from tests.integration.consumers.archive.test_child import _serve

child = ChildProcess("test-child", _serve, Settings(data_dir=Path(sys.argv[1])), (TransientError,), 60)
print(child.pid, flush=True)
child.call(("sleep", "30"))  # the member is killed meanwhile
"""


def test_the_child_ends_when_the_member_is_killed_even_in_the_middle_of_a_request(tmp_path: Path) -> None:
    """So that no upload of a dead member lands after its partitions' new owner has started."""
    member = subprocess.Popen(
        [sys.executable, "-c", _MEMBER, str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    assert member.stdout is not None
    child = psutil.Process(int(member.stdout.readline()))
    time.sleep(0.5)  # the request is being served
    assert child.status() != psutil.STATUS_ZOMBIE
    member.kill()
    member.wait()
    deadline = time.monotonic() + 3  # far below the request's 30 s
    while child.is_running() and child.status() != psutil.STATUS_ZOMBIE and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
