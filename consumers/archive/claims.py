"""The archiver's event_id claims (`StateStore.claim_many`), made in a child process of the member.

A claim's Python work (a batch's SQL parameters or script arguments, the reply parsed) is small,
but in the member's process it holds the GIL against the member's own thread, which decodes the
next batch meanwhile; in a child it holds only the child's, and the member's waiting thread holds
none (figures: docs/benchmarks/what-was-tried.md).

The child is spawned (never forked: librdkafka's threads do not survive a fork) with the
archiver, which waits until it is ready, so that its start (an interpreter, the imports, which
include the program's main module: spawn's rule) is not paid by the first batches. It opens the
store itself, answers one claim at a time over a pipe, and exits when the member's end of the
pipe closes, so a member killed with -9 leaves no orphan. It runs in a process group of its own,
so the signal that stops the member's group leaves it to answer the member's last batch. The
store's errors come back as they are raised in process: StateStoreUnavailable, or ClaimsFailed
for anything else (a bug). A claim that finds the child dead (killed, crashed) or not answering
within CLAIM_DEADLINE_S raises StateStoreUnavailable, as a failing store does, and the next claim
starts a fresh child. It is not retried here: the archiver already keeps a batch whose claim
failed and makes it again at its next poll (logging why), and a retry here could double the time
the member's thread may wait for it.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Protocol

from hookstream.errors import HookstreamError, StateStoreUnavailable
from hookstream.settings import Settings
from hookstream.state import open_store

# Above the longest a sound child takes to answer: its start (an interpreter and the imports, a
# few seconds on a loaded host), the store's first open (up to 10 s while processes race to put a
# new SQLite file in WAL mode) and one claim (2 s deadlines; Redis retries a stale connection once).
# Far below max.poll.interval.ms (5 min): the member's thread may wait for a claim at pre_commit.
CLAIM_DEADLINE_S = 30.0
# How long close() lets the child close its store before it is killed.
_CLOSE_WAIT_S = 5.0

_UNAVAILABLE, _FAILED = "unavailable", "failed"  # the store's own error; anything else (a bug)
Reply = list[str] | tuple[str, str]  # the values the keys hold, or (which failure, why)


class ClaimsFailed(HookstreamError):
    """The store raised something other than StateStoreUnavailable in the child: a bug, not an
    outage, so the archiver stops rather than waits it out."""


class Claims(Protocol):
    """What the archiver needs of a state store; a StateStore and a ClaimProcess both are one."""

    name: str

    def claim_many(self, keys: Sequence[str], ttl_s: float, values: Sequence[str]) -> list[str]: ...

    def close(self) -> None: ...


def _serve(conn: Connection, settings: Settings) -> None:
    """The child: one claim per request, until the member's end of the pipe closes."""
    # A group of its own: the SIGTERM or Ctrl-C that stops the member's process group (honcho,
    # Kubernetes, a terminal) must not end this child while the member finishes its last batch.
    os.setpgid(0, 0)
    store = open_store(settings)
    try:
        conn.send([])  # ready (an empty answer): the imports are done
        while True:
            keys, ttl_s, values = conn.recv()
            reply: Reply
            try:
                reply = store.claim_many(keys, ttl_s, values)
            except StateStoreUnavailable as exc:
                reply = (_UNAVAILABLE, str(exc))
            except Exception as exc:  # a bug: the member hears of it, and the next claim is served
                reply = (_FAILED, f"{type(exc).__name__}: {exc}")
            conn.send(reply)
    except (EOFError, OSError):  # the member closed its end, or is gone (even after kill -9)
        pass
    finally:
        store.close()


class ClaimProcess:
    """`claim_many` of the settings' state store, made in a child process; one claim at a time."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.name = open_store(settings).name  # building a store connects nothing
        self._lock = threading.Lock()  # the checks thread and the member's (a batch claimed late)
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._closed = False
        try:
            self._start()
        except (EOFError, OSError):  # the first claim starts another, and reports its failure
            self._stop(0)

    @property
    def pid(self) -> int | None:
        """The child's, while it runs (none after close or a failure, until the next claim)."""
        return None if self._process is None else self._process.pid

    def claim_many(self, keys: Sequence[str], ttl_s: float, values: Sequence[str]) -> list[str]:
        if not keys:
            return []
        with self._lock:
            if self._closed:
                raise StateStoreUnavailable(f"{self.name}: the claims process is closed")
            try:
                conn = self._conn if self._conn is not None else self._start()
                conn.send((keys, ttl_s, values))
                if conn.poll(CLAIM_DEADLINE_S):
                    reply: Reply = conn.recv()
                    if isinstance(reply, list):
                        return reply
                    kind, why = reply
                    raise StateStoreUnavailable(why) if kind == _UNAVAILABLE else ClaimsFailed(why)
                failure = f"did not answer within {CLAIM_DEADLINE_S:g}s"
            except (EOFError, OSError) as exc:  # no child to ask (died, or could not start)
                failure = f"is gone ({type(exc).__name__})"
            self._stop(0)
            raise StateStoreUnavailable(
                f"{self.name}: the claims process {failure} (the next claim starts another)"
            )

    def _start(self) -> Connection:
        context = multiprocessing.get_context("spawn")
        ours, theirs = context.Pipe()
        # Daemonic: a member that exits without close() stops it too, rather than waiting on it.
        process = context.Process(
            target=_serve, args=(theirs, self._settings), name="archive-claims", daemon=True
        )
        process.start()
        theirs.close()  # held by the child alone now, so its death reads as EOF here
        self._process, self._conn = process, ours
        # Waited for, so that its start (an interpreter, the imports) is not paid by a batch.
        if not ours.poll(CLAIM_DEADLINE_S):
            raise TimeoutError(f"did not start within {CLAIM_DEADLINE_S:g}s")
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
                process.kill()  # stuck (in a claim, or closing): a store outlives a client killed
                process.join(_CLOSE_WAIT_S)

    def close(self) -> None:
        with self._lock:
            self._closed = True  # a claim after this would start a child no one closes
            self._stop(_CLOSE_WAIT_S)
