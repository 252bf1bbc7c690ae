"""The dedupe store's writes of concurrent webhooks, made together: one store call per batch.

Group commit, as a database makes its log writes: a request queues its claim and waits; one
writer per worker process takes everything queued and makes it in two store calls (the acks
with `put_many`, then the claims with `add_many`), each one statement in SQLite and one round
trip to Redis, then wakes each waiting request with its answer. Under load a batch holds the
claims of every request that reached the store while the previous batch was being made, so
the store's cost per webhook falls as the rate rises, where two calls per webhook made it rise.

Acks are queued and not waited for: a webhook is answered once Kafka holds its record, and its
"acked" mark follows within a batch. Until then a retry of it finds the claim pending and
waits for the mark, as it would for any copy in flight. A worker killed between the two leaves
the claim to expire (its TTL), after which a retry produces again: a duplicate the consumers
drop, never a loss.

The writer is a `threading.Thread`: a native thread under gthread, a greenlet under gevent's
patching, where the waits and the wake-ups are gevent's. Started on first use, in the process
that uses it (gunicorn forks its workers).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hookstream.errors import StateStoreUnavailable
from hookstream.state import StateStore


@dataclass(slots=True)
class _Claim:
    key: str
    value: str
    done: threading.Event  # made per claim, so gevent's when threading is patched
    added: bool = False
    error: StateStoreUnavailable | None = None


class GroupCommit:
    """`add` (waited for) and `ack_later` (not) for one store, batched by one writer."""

    def __init__(
        self,
        store: StateStore,
        claim_ttl_s: float,
        acked: str,
        ack_ttl_s: float,
        wait_s: float,
        on_error: Callable[[StateStoreUnavailable], None],
    ) -> None:
        self.store = store
        self.claim_ttl_s = claim_ttl_s
        self.acked = acked
        self.ack_ttl_s = ack_ttl_s
        self.wait_s = wait_s  # a claim's longest wait: its batch's store call has its own deadline
        self.on_error = on_error  # a failed ack batch has no request to tell: it is only reported
        self._work = threading.Condition()
        self._claims: list[_Claim] = []
        self._acks: list[str] = []
        self._pid = 0
        self._closing = False

    def add(self, key: str, value: str) -> bool:
        """`store.add(key, claim_ttl_s, value)` within a batch; raises `StateStoreUnavailable`."""
        claim = _Claim(key, value, threading.Event())
        self._queue(lambda: self._claims.append(claim))
        if not claim.done.wait(self.wait_s):
            raise StateStoreUnavailable(f"{self.store.name}: no answer within {self.wait_s:g}s")
        if claim.error is not None:
            raise claim.error
        return claim.added

    def ack_later(self, key: str) -> None:
        """Mark `key` acked (overwriting its claim) in the next batch."""
        self._queue(lambda: self._acks.append(key))

    def close(self) -> None:
        """Make what is queued (acks a graceful stop must not drop), then stop the writer (a later
        call starts another)."""
        with self._work:
            self._closing, self._pid = True, 0
            claims, acks = self._take()
            self._work.notify()
        self._make(claims, acks)

    def _queue(self, append: Callable[[], None]) -> None:
        with self._work:
            if self._pid != os.getpid():
                self._start()
            append()
            self._work.notify()

    def _start(self) -> None:
        # A writer inherited through fork() does not run in the child: start this process's own.
        self._pid, self._closing = os.getpid(), False
        threading.Thread(target=self._run, name="dedupe-group-commit", daemon=True).start()

    def _take(self) -> tuple[list[_Claim], list[str]]:
        claims, self._claims = self._claims, []
        acks, self._acks = self._acks, []
        return claims, acks

    def _run(self) -> None:
        while True:
            with self._work:
                while not (self._claims or self._acks or self._closing):
                    self._work.wait()
                if self._closing:
                    return
                claims, acks = self._take()
            try:
                self._make(claims, acks)
            except Exception as exc:  # a bug must not stop the writer: every claim would time out
                failure = StateStoreUnavailable(f"{self.store.name}: {type(exc).__name__}: {exc}")
                for claim in claims:
                    claim.error = failure
                    claim.done.set()

    def _make(self, claims: Sequence[_Claim], acks: Sequence[str]) -> None:
        # Acks first: a retry claimed in the same batch as its first copy's ack then reads "acked".
        if acks:
            try:
                self.store.put_many(acks, self.acked, self.ack_ttl_s)
            except StateStoreUnavailable as exc:
                self.on_error(exc)
        if not claims:
            return
        try:
            added = self.store.add_many([c.key for c in claims], self.claim_ttl_s, [c.value for c in claims])
        except StateStoreUnavailable as exc:
            for claim in claims:
                claim.error = exc
        else:
            for claim, was_added in zip(claims, added, strict=True):
                claim.added = was_added
        for claim in claims:
            claim.done.set()
