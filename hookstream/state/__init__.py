"""Idempotency state shared by every process that needs it: one small key-value interface.

Two backends with the same semantics (one contract test suite runs against both):
- embedded (default): one SQLite file, `<data_dir>/state.sqlite3`, shared by every process
  on the host (gunicorn workers, group members), WAL, short busy timeout;
- Redis, when `HOOKSTREAM_REDIS_URL` is set: shared by every instance and member of a deployment.

Every key has a TTL and every operation is atomic. Keys are built with `state_key`, which
namespaces them by topic and, for a group's state, by group. A store that does not answer within
its deadline raises `StateStoreUnavailable`; each caller decides what that means (the producer
produces anyway, the notifier retries, `dlq replay` refuses). A call that raised may still have
taken effect (Redis ran it but answered after the deadline): write values a later call can
recognise (a token), never assume a failed write did not happen. Clients are opened lazily, on first
use, so a store built before gunicorn forks is never shared across workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hookstream.settings import Settings

# Long enough for a busy SQLite writer or a Redis round trip on a loaded host, short enough that
# a webhook sender is not kept waiting by an optimisation.
DEFAULT_TIMEOUT_S = 2.0
STATE_FILE = "state.sqlite3"


class StateStore(Protocol):
    """Keys with values and a TTL; a key past its TTL reads as absent."""

    name: str  # where the state lives, without credentials (logs, /readyz)

    def add(self, key: str, ttl_s: float, value: str = "1") -> bool:
        """Set `key` only if absent (SET NX PX): True when this call added it."""

    def add_many(self, keys: Sequence[str], ttl_s: float, values: Sequence[str] | None = None) -> list[bool]:
        """`add` for each key (with its value in `values`, else "1"), in one round trip; one bool
        per key, in order."""

    def claim_many(self, keys: Sequence[str], ttl_s: float, values: Sequence[str]) -> list[str]:
        """`add` for each key with its value, in one round trip; then the value each key holds,
        in order: its own value when this call (or an earlier one) set it, the owner's when
        another did. A caller that writes a value only it can write (a Kafka position) learns
        whether a key is its own, even when the call that set it raised after taking effect."""

    def put_many(self, keys: Sequence[str], value: str, ttl_s: float) -> None:
        """`put` of one value to each key, in one round trip (one transaction in SQLite)."""

    def get(self, key: str) -> str | None:
        """The value of `key`, or None when it is absent or expired."""

    def put(self, key: str, value: str, ttl_s: float) -> None:
        """Set `key` (overwriting) with a new TTL."""

    def delete(self, key: str, only_if: str | None = None) -> bool:
        """Remove `key` (only when its value is `only_if`, if given, atomically): True if removed."""

    def ping(self) -> None:
        """Return when the store answers; StateStoreUnavailable when it does not."""

    def close(self) -> None:
        """Release connections (the store may be used again: it reopens lazily)."""


def key_part(text: str) -> str:
    """`text` as a part of a state key. Group ids and destinations may contain ":"; escaping keeps
    one key per distinct tuple (most parts hold neither character: they are returned as they are)."""
    return text.replace("%", "%25").replace(":", "%3A") if ("%" in text or ":" in text) else text


def state_key(topic: str, kind: str, *parts: str, group: str | None = None) -> str:
    """`hookstream:<topic>[:g:<group>]:<kind>:<part>:...`, every part escaped.

    `kind` names the state ("dedupe", "sent", "replay", ...); a group's state passes `group`,
    so two deployments (or two groups) sharing one store never see each other's keys.
    """
    scope = f"hookstream:{key_part(topic)}"
    if group is not None:
        scope += f":g:{key_part(group)}"
    return ":".join((scope, key_part(kind), *map(key_part, parts)))


def open_store(settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> StateStore:
    """Redis when `settings.redis_url` is set, else the host's SQLite file; nothing connects yet."""
    if settings.redis_url:
        from hookstream.state.redis import RedisStore

        return RedisStore(settings.redis_url, settings.redis_password, timeout_s)
    from hookstream.state.sqlite import SqliteStore

    return SqliteStore(settings.data_dir / STATE_FILE, timeout_s)
