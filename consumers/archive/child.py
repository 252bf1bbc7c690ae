"""A child process that answers the archiver's requests one at a time: its event_id claims and its
uploads run there, so that their Python work does not hold the member process's GIL against the
member's own thread (figures: docs/benchmarks/what-was-tried.md). A thread of the member sends a
request and waits for the answer, holding no GIL meanwhile.

The child is spawned (never forked: librdkafka's threads do not survive a fork) when the client
is built, which waits until it is ready, so that its start (an interpreter, the imports, which
include the program's main module: spawn's rule) is not paid by the first batches. It opens what
it serves itself (`serve`, called with the settings) and answers over a pipe. It runs in a process
group of its own, so the signal that stops the member's group leaves it to answer the member's
last request. It ends with the member: when the member's end of the pipe closes, and, within a
tenth of a second, when the member dies (kill -9, the OOM killer) even in the middle of a request,
so that no upload of a dead member lands after its partitions' new owner has started.

An error raised in the child comes back as the first of the client's `passes` types it is an
instance of, with its message, and as ChildFailed when it is none of them (a bug), as is a failure
to open what the child serves. A request that finds the child dead (killed, crashed) or not
answering within its deadline raises the first type passed, as an outage of what the child serves
does, and the next request starts a fresh child. It is not retried here: the archiver already
makes a failed claim or upload again later.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from hookstream.errors import HookstreamError
from hookstream.settings import Settings

# What the child serves: given the settings, a context (opened and closed in the child) that
# yields the function answering one request. Module-level, so that spawn can pass it by name.
Serve = Callable[[Settings], AbstractContextManager[Callable[[Any], Any]]]

# Above the longest a sound child takes to be ready: an interpreter and the imports, a few seconds
# on a loaded host.
START_DEADLINE_S = 30.0
# How long close() lets the child close what it serves before it is killed.
_CLOSE_WAIT_S = 5.0
# How often the child looks for its member.
_ORPHAN_CHECK_S = 0.1

_OK, _RAISED, _FAILED = "ok", "raised", "failed"


class ChildFailed(HookstreamError):
    """The child raised an error of a type its client does not pass, or could not open what it
    serves: a bug or a configuration error, not an outage, so the archiver stops rather than
    waits it out."""


def _exit_when_orphaned(member: int) -> None:
    """In the child: end it as soon as the member is gone, whatever it is doing."""
    while os.getppid() == member:
        time.sleep(_ORPHAN_CHECK_S)
    os._exit(1)


def _run(conn: Connection, serve: Serve, settings: Settings, passes: tuple[type[Exception], ...]) -> None:
    """The child: one answer per request, until the member's end of the pipe closes."""
    # A group of its own: the SIGTERM or Ctrl-C that stops the member's process group (honcho,
    # Kubernetes, a terminal) must not end this child while the member finishes its last request.
    os.setpgid(0, 0)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    with ExitStack() as opened:
        try:
            answer = opened.enter_context(serve(settings))
        except Exception as exc:
            conn.send((_FAILED, f"{type(exc).__name__}: {exc}"))  # instead of ready
            return
        try:
            conn.send((_OK, None))  # ready: the imports are done, what it serves is open
            while True:
                request = conn.recv()
                try:
                    reply: tuple[Any, ...] = (_OK, answer(request))
                except passes as exc:
                    kind = next(i for i, passed in enumerate(passes) if isinstance(exc, passed))
                    reply = (_RAISED, kind, str(exc))
                except Exception as exc:  # a bug: the member hears of it; the next request is served
                    reply = (_FAILED, f"{type(exc).__name__}: {exc}")
                conn.send(reply)
        except (EOFError, OSError):  # the member closed its end
            pass


class ChildProcess:
    """`serve`'s answers, from a child process; one request at a time, each within its deadline."""

    def __init__(
        self,
        name: str,
        serve: Serve,
        settings: Settings,
        passes: tuple[type[Exception], ...],
        deadline_s: float,
    ) -> None:
        self.name = name
        self.deadline_s = deadline_s  # a request's, unless the call gives its own
        self._serve = serve
        self._settings = settings
        self._passes = passes
        self._lock = threading.Lock()  # callers in several threads take turns
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._closed = False
        try:
            self._start()
        except (EOFError, OSError):  # the first request starts another, and reports its failure
            self._stop(0)

    @property
    def pid(self) -> int | None:
        """The child's, while it runs (none after close or a failure, until the next request)."""
        return None if self._process is None else self._process.pid

    def call(self, request: Any, deadline_s: float | None = None) -> Any:
        outage = self._passes[0]
        deadline_s = self.deadline_s if deadline_s is None else deadline_s
        with self._lock:
            if self._closed:
                raise outage(f"the {self.name} process is closed")
            try:
                conn = self._conn if self._conn is not None else self._start()
                conn.send(request)
                reply = conn.recv() if conn.poll(deadline_s) else None
                failure = f"did not answer within {deadline_s:g}s"
            except (EOFError, OSError) as exc:  # no child to ask (died, or could not start)
                reply, failure = None, f"is gone ({type(exc).__name__})"
            except BaseException:  # interrupted: its answer must not reach the next caller
                self._stop(0)
                raise
            if reply is None:
                self._stop(0)
                raise outage(f"the {self.name} process {failure} (the next request starts another)")
        if reply[0] == _OK:
            return reply[1]
        if reply[0] == _RAISED:
            raise self._passes[reply[1]](reply[2])
        raise ChildFailed(f"the {self.name} process: {reply[1]}")

    def _start(self) -> Connection:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        # Daemonic: a member that exits without close() stops it too, rather than waiting on it.
        process = context.Process(
            target=_run, args=(theirs, self._serve, self._settings, self._passes), name=self.name, daemon=True
        )
        process.start()
        theirs.close()  # held by the child alone now, so its death reads as EOF here
        self._process, self._conn = process, ours
        if not ours.poll(START_DEADLINE_S):
            raise TimeoutError(f"did not start within {START_DEADLINE_S:g}s")
        ready = ours.recv()
        if ready[0] != _OK:
            self._stop(_CLOSE_WAIT_S)
            raise ChildFailed(f"the {self.name} process could not start: {ready[1]}")
        return ours

    def _stop(self, wait_s: float) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()  # the child's next receive ends its loop
        if process is not None:
            process.join(wait_s)
            if process.exitcode is None:
                process.kill()  # stuck (in a request, or closing): what it serves outlives it
                process.join(_CLOSE_WAIT_S)

    def close(self) -> None:
        with self._lock:
            self._closed = True  # a request after this would start a child no one closes
            self._stop(_CLOSE_WAIT_S)
