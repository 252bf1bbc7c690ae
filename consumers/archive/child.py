"""A child process that answers the archiver's requests one at a time: its event_id claims and its
uploads run there, so that their Python work does not hold the member process's GIL against the
member's own thread (figures: docs/benchmarks/what-was-tried.md). A thread of the member sends a
request and waits for the answer, holding no GIL meanwhile.

The child is spawned (never forked: librdkafka's threads do not survive a fork) when the client
is built, which waits until it is ready, so that its start (an interpreter, the imports, which
include the program's main module: spawn's rule) is not paid by the first batches. It opens what
it serves itself (`serve`, called with the settings), answers over a pipe, and exits when the
member's end of the pipe closes, so a member killed with -9 leaves no orphan. It runs in a process
group of its own, so the signal that stops the member's group leaves it to answer the member's
last request.

Errors come back as they were raised in the child when they are of a type the client passes
(the same type, with its message), and as ChildFailed for anything else (a bug). A request that
finds the child dead (killed, crashed) or not answering within the deadline raises the first type
passed, as an outage of what the child serves does, and the next request starts a fresh child.
It is not retried here: the archiver already makes a failed claim or upload again later.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from hookstream.errors import HookstreamError
from hookstream.settings import Settings

# What the child serves: given the settings, a context (opened and closed in the child) that
# yields the function answering one request. Module-level, so that spawn can pass it by name.
Serve = Callable[[Settings], AbstractContextManager[Callable[[Any], Any]]]

# How long close() lets the child close what it serves before it is killed.
_CLOSE_WAIT_S = 5.0

_OK, _RAISED, _FAILED = "ok", "raised", "failed"


class ChildFailed(HookstreamError):
    """The child raised an error of a type its client does not pass: a bug, not an outage, so the
    archiver stops rather than waits it out."""


def _run(conn: Connection, serve: Serve, settings: Settings, passes: tuple[type[Exception], ...]) -> None:
    """The child: one answer per request, until the member's end of the pipe closes."""
    # A group of its own: the SIGTERM or Ctrl-C that stops the member's process group (honcho,
    # Kubernetes, a terminal) must not end this child while the member finishes its last request.
    os.setpgid(0, 0)
    with serve(settings) as answer:
        try:
            conn.send((_OK, None))  # ready: the imports are done
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
        except (EOFError, OSError):  # the member closed its end, or is gone (even after kill -9)
            pass


class ChildProcess:
    """`serve`'s answers, from a child process; one request at a time, each within `deadline_s`."""

    def __init__(
        self,
        name: str,
        serve: Serve,
        settings: Settings,
        passes: tuple[type[Exception], ...],
        deadline_s: float,
    ) -> None:
        self.name = name
        self.deadline_s = deadline_s
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

    def call(self, request: Any) -> Any:
        outage = self._passes[0]
        with self._lock:
            if self._closed:
                raise outage(f"the {self.name} process is closed")
            try:
                conn = self._conn if self._conn is not None else self._start()
                conn.send(request)
                reply = conn.recv() if conn.poll(self.deadline_s) else None
                failure = f"did not answer within {self.deadline_s:g}s"
            except (EOFError, OSError) as exc:  # no child to ask (died, or could not start)
                reply, failure = None, f"is gone ({type(exc).__name__})"
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
        if not ours.poll(self.deadline_s):
            raise TimeoutError(f"did not start within {self.deadline_s:g}s")
        ours.recv()
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
