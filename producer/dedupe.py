"""Answer a sender's retry of an accepted event without producing it again, across every worker
and every producer instance that shares the state store.

Fast.io retries a delivery it thinks failed; within `HOOKSTREAM_DEDUPE_WINDOW_S` the retry gets
200 with `"duplicate": true` and no second record. Per event_id the store holds one key:
- `pending:<token>` while one copy produces it (SET NX: exactly one copy wins, the OWNER);
- `acked` once Kafka acknowledged it, for the window.
Copies arriving while one is in flight wait (polling the key) for its outcome: SEEN once it is
acked, FAILED when its claim is released (it was not acked: the sender's retry may produce it)
or their wait runs out. No copy is answered 2xx before some copy's record was acknowledged.

This is an optimisation, not the guarantee (consumers deduplicate by event_id). So when the
store does not answer within a short deadline, the copy produces anyway (OWNER), the error is
counted in `hookstream_dedupe_store_errors_total` and logged once per interval, and no request
fails because of the store. A pending claim has a TTL, so an owner that dies (kill -9) does
not block its event_id for longer than that.

Claims and acks are written in batches, one writer per worker (`producer.group_commit`): the
store's cost is paid per batch of concurrent webhooks, not twice per webhook. Called from
gunicorn's threads or gevent's greenlets (`time.sleep` and the Redis socket cooperate under
gevent's patching).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from enum import Enum

from hookstream.errors import StateStoreUnavailable
from hookstream.settings import Settings
from hookstream.state import StateStore, open_store, state_key
from producer.group_commit import GroupCommit
from producer.metrics import DEDUPE_STORE_ERRORS

log = logging.getLogger("hookstream.producer.dedupe")

# Short: a webhook must not wait on an optimisation (Redis answers in well under a millisecond).
STORE_TIMEOUT_S = 0.5
_ACKED = "acked"
_PENDING = "pending:"
_LOG_INTERVAL_S = 60.0
# Waiting copies poll the key: fast at first (the owner's ack is usually milliseconds away), then
# backing off so a slow broker is not met with a storm of reads.
_POLL_FIRST_S = 0.002
_POLL_MAX_S = 0.05


class Claim(Enum):
    OWNER = "owner"  # produce it, then call settle()
    SEEN = "seen"  # accepted before (or just now, by the copy we waited for)
    FAILED = "failed"  # the in-flight copy we waited for was not accepted (or our wait ran out)


class Deduper:
    """Thread- and greenlet-safe; one per worker. `claim` and `settle` for a key are called by
    the same request (thread or greenlet), which is how the owner's token is found again."""

    def __init__(self, store: StateStore, topic: str, window_s: float, claim_ttl_s: float) -> None:
        self.store = store
        self.topic = topic
        self.window_s = window_s
        self.claim_ttl_s = claim_ttl_s
        self._tokens: dict[tuple[str, int], str | None] = {}  # (key, request) -> claim token
        # The claim and the ack of every webhook go through one writer, in batches.
        self._batch = GroupCommit(
            store, claim_ttl_s, _ACKED, window_s, wait_s=2 * STORE_TIMEOUT_S, on_error=self._store_failed
        )
        self._errors_lock = threading.Lock()
        self._errors_unlogged = 0
        self._next_log = 0.0

    def _key(self, key: str) -> str:
        return state_key(self.topic, "dedupe", key)

    def claim(self, key: str, timeout_s: float) -> Claim:
        """OWNER when this request should produce `key`; else what became of the copy before it."""
        if self.window_s <= 0:  # HOOKSTREAM_DEDUPE_WINDOW_S=0: dedupe off, every copy produces
            return Claim.OWNER
        stored = self._key(key)
        token = secrets.token_hex(16)  # random like uuid4, without building a UUID object per webhook
        try:
            if self._batch.add(stored, _PENDING + token):
                self._tokens[key, threading.get_ident()] = token
                return Claim.OWNER
            return self._await_outcome(stored, timeout_s)
        except StateStoreUnavailable as exc:
            self._store_failed(exc)
            # The add may have landed after its deadline: keep the token, so settle() can still
            # record the ack or release the claim.
            self._tokens[key, threading.get_ident()] = token
            return Claim.OWNER

    def _await_outcome(self, stored: str, timeout_s: float) -> Claim:
        deadline = time.monotonic() + timeout_s
        pause = _POLL_FIRST_S
        while True:
            value = self.store.get(stored)
            if value == _ACKED:
                return Claim.SEEN
            if value is None:  # released (not acked) or expired (its owner died)
                return Claim.FAILED
            if time.monotonic() + pause > deadline:
                return Claim.FAILED
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX_S)

    def settle(self, key: str, accepted: bool) -> None:
        """The owner's outcome: remember `key` for the window if Kafka holds it, else release it."""
        if self.window_s <= 0:
            return
        token = self._tokens.pop((key, threading.get_ident()), None)
        stored = self._key(key)
        try:
            if accepted:
                self._batch.ack_later(stored)
            elif token is not None:
                # Only our own claim: if it expired and another copy claimed the key, that one's stays.
                self._batch.release(stored, _PENDING + token)
        except StateStoreUnavailable as exc:
            self._store_failed(exc)

    def _store_failed(self, exc: StateStoreUnavailable) -> None:
        DEDUPE_STORE_ERRORS.inc()
        now = time.monotonic()
        with self._errors_lock:
            self._errors_unlogged += 1
            if now < self._next_log:
                return
            self._next_log = now + _LOG_INTERVAL_S
            count, self._errors_unlogged = self._errors_unlogged, 0
        log.warning(
            "dedupe store unavailable; producing without dedupe",
            extra={"fields": {"store": self.store.name, "errors": count, "error": str(exc)}},
        )

    def store_status(self) -> dict[str, str]:
        """For /readyz, which reports it and stays 200 (readiness is Kafka's): the store and
        "ok", or why it does not answer. Never raises."""
        try:
            self.store.ping()
        except StateStoreUnavailable as exc:
            return {"store": self.store.name, "status": "unavailable", "detail": str(exc)}
        return {"store": self.store.name, "status": "ok"}

    def close(self) -> None:
        self._batch.close()
        self.store.close()


def build_deduper(settings: Settings) -> Deduper:
    """The worker's deduper on the deployment's state store (nothing connects until first use)."""
    # A claim outlives the owner's longest wait for Kafka, so a slow ack is never claimed twice;
    # and expires soon after, so an owner that died frees its event_id for the sender's retry.
    claim_ttl_s = 2 * settings.delivery_timeout_s + 10.0
    return Deduper(
        open_store(settings, timeout_s=STORE_TIMEOUT_S), settings.topic, settings.dedupe_window_s, claim_ttl_s
    )
