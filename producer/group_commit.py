"""The dedupe store's writes of concurrent webhooks, made together: one store call per batch.

Group commit, as a database makes its log writes: a request queues its claim and waits; one
writer per worker process takes everything queued and makes it in two store calls (the acks
with `put_many`, then the claims with `claim_many`), each one statement in SQLite and one round
trip to Redis, then wakes each waiting request with its answer. Under load a batch holds the
claims of every request that reached the store while the previous batch was being made, so
the store's cost per webhook falls as the rate rises, where two calls per webhook made it rise.

A claim is won when the key holds its value afterwards, so a call the Redis client repeated
after a lost reply still wins it. Releases (a copy Kafka did not take) go through the same
writer, after the claims queued before them: a claim whose wait ran out may still be made, and
released first it would hold its key until its TTL.

Acks are queued and not waited for: a webhook is answered once Kafka holds its record, and its
"acked" mark follows within a batch. Until then a retry of it finds the claim pending and
waits for the mark, as it would for any copy in flight. Acks the store failed to take are tried
again with the next batch (the newest `_UNWRITTEN_MAX`), rather than leave their claims pending
until the TTL. A worker killed between the two leaves the claim to expire (its TTL), after which
a retry produces again: a duplicate the consumers drop, never a loss.

The writer is a `threading.Thread`: a native thread under gthread, a greenlet under gevent's
patching, where the waits and the wake-ups are gevent's (and SQLite's busy wait, in C, holds
the hub: see `producer.gunicorn_conf`). Started on first use, in the process that uses it
(gunicorn forks its workers).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hookstream.errors import StateStoreUnavailable
from hookstream.state import StateStore

# Acks kept for the next batch while the store fails: a few seconds of webhooks at full rate.
_UNWRITTEN_MAX = 10_000


@dataclass(slots=True)
class _Request:
    """A claim or a release waiting for the writer, and its answer."""

    key: str
    value: str
    done: threading.Event = field(default_factory=threading.Event)  # gevent's when patched
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
        self._claims: list[_Request] = []
        self._acks: list[str] = []
        self._releases: list[_Request] = []
        self._unwritten: deque[str] = deque(maxlen=_UNWRITTEN_MAX)  # acks the store failed to take
        self._pid = 0
        self._closing = False

    def add(self, key: str, value: str) -> bool:
        """Claim `key` with `value` (SET NX, `claim_ttl_s`) within a batch: True when the key holds
        `value` afterwards. Raises `StateStoreUnavailable`."""
        claim = _Request(key, value)
        self._queue(lambda: self._claims.append(claim))
        if not claim.done.wait(self.wait_s):
            raise StateStoreUnavailable(f"{self.store.name}: no answer within {self.wait_s:g}s")
        if claim.error is not None:
            raise claim.error
        return claim.added

    def ack_later(self, key: str) -> None:
        """Mark `key` acked (overwriting its claim) in the next batch."""
        self._queue(lambda: self._acks.append(key))

    def release(self, key: str, value: str) -> None:
        """Delete `key` if it still holds `value`, after the claims queued before; waits at most
        `wait_s` (a failure is reported, not raised: the claim then expires with its TTL)."""
        release = _Request(key, value)
        self._queue(lambda: self._releases.append(release))
        release.done.wait(self.wait_s)

    def close(self) -> None:
        """Make what is queued (acks a graceful stop must not drop), then stop the writer (a later
        call starts another)."""
        with self._work:
            self._closing, self._pid = True, 0
            claims, acks, releases = self._take()
            self._work.notify()
        self._make(claims, acks, releases)

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

    def _take(self) -> tuple[list[_Request], list[str], list[_Request]]:
        claims, self._claims = self._claims, []
        acks, self._acks = [*self._unwritten, *self._acks], []  # the unwritten wake nobody
        self._unwritten.clear()
        releases, self._releases = self._releases, []
        return claims, acks, releases

    def _run(self) -> None:
        while True:
            with self._work:
                while not (self._claims or self._acks or self._releases or self._closing):
                    self._work.wait()
                if self._closing:
                    return
                claims, acks, releases = self._take()
            try:
                self._make(claims, acks, releases)
            except Exception as exc:  # a bug must not stop the writer: every claim would time out
                failure = StateStoreUnavailable(f"{self.store.name}: {type(exc).__name__}: {exc}")
                for claim in (*claims, *releases):
                    claim.error = failure
                    claim.done.set()

    def _make(self, claims: Sequence[_Request], acks: Sequence[str], releases: Sequence[_Request]) -> None:
        # Acks first: a retry claimed in the same batch as its first copy's ack then reads "acked".
        if acks:
            try:
                self.store.put_many(acks, self.acked, self.ack_ttl_s)
            except StateStoreUnavailable as exc:
                self.on_error(exc)
                with self._work:
                    self._unwritten.extend(acks)
        if claims:
            try:
                held = self.store.claim_many(
                    [c.key for c in claims], self.claim_ttl_s, [c.value for c in claims]
                )
            except StateStoreUnavailable as exc:
                for claim in claims:
                    claim.error = exc
            else:
                for claim, value in zip(claims, held, strict=True):
                    claim.added = value == claim.value
            for claim in claims:
                claim.done.set()
        for release in releases:  # rare: a copy Kafka did not take
            try:
                self.store.delete(release.key, only_if=release.value)
            except StateStoreUnavailable as exc:
                self.on_error(exc)
            release.done.set()
