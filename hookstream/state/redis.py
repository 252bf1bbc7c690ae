"""The shared state store: Redis (or Valkey), for every instance and member of a deployment.

Each operation is one command (`SET NX PX`, `GET`, `SET PX`, `DEL`), one Lua script
(`add_many`, `claim_many`, compare-and-delete) or one transaction (`put_many`), so each is
atomic on the server. Socket
timeouts bound every call; a stale connection (Redis restarted) is retried once at once, a
timeout is not (the caller's deadline matters more than this one answer).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hookstream.errors import StateStoreUnavailable
from hookstream.state.metrics import timed

_COMPARE_AND_DELETE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# SET NX PX for each key, in one command: a pipeline of 500 SETs costs redis-py ~20 ms of CPU to
# encode and parse, this ~1 ms (and the batch is atomic as a whole). Not for Redis Cluster, whose
# keys of one script must share a slot; Hookstream uses one primary.
_ADD_MANY = """
local added = {}
for i, key in ipairs(KEYS) do
  added[i] = redis.call('SET', key, ARGV[i + 1] or '1', 'NX', 'PX', ARGV[1]) and 1 or 0
end
return added
"""

# _ADD_MANY, answering each key's value afterwards.
_CLAIM_MANY = """
local held = {}
for i, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[i + 1], 'NX', 'PX', ARGV[1])
  held[i] = redis.call('GET', key)
end
return held
"""

# By the operation each serves (its label in the latency histogram): `delete` with `only_if`.
_SCRIPTS = {"delete": _COMPARE_AND_DELETE, "add_many": _ADD_MANY, "claim_many": _CLAIM_MANY}


def _ms(ttl_s: float) -> int:
    return max(1, round(ttl_s * 1000))


def public_url(url: str) -> str:
    """The URL without user or password (for logs and /readyz)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class RedisStore:
    """Thread- and gevent-safe (redis-py's pool); the pool is built on first use and rebuilt
    by redis-py itself in a forked child."""

    def __init__(self, url: str, password: str | None, timeout_s: float) -> None:
        self.name = public_url(url)
        self._url = url
        self._password = password
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._client: redis.Redis | None = None
        self._scripts: dict[str, redis.commands.core.Script] = {}  # by operation, with the client

    def _redis(self) -> redis.Redis:
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                options: dict[str, object] = {}
                if self._password:  # a password in the URL wins; else the secret's
                    options["password"] = self._password
                client = redis.Redis.from_url(
                    self._url,
                    socket_timeout=self._timeout_s,
                    socket_connect_timeout=self._timeout_s,
                    retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
                    decode_responses=True,
                    **options,  # type: ignore[arg-type]
                )
                self._scripts = {name: client.register_script(lua) for name, lua in _SCRIPTS.items()}
                self._client = client  # last: another thread that sees it finds the scripts too
            return self._client

    def _unavailable(self, exc: redis.RedisError) -> StateStoreUnavailable:
        return StateStoreUnavailable(f"{self.name}: {type(exc).__name__}: {exc}")

    def add(self, key: str, ttl_s: float, value: str = "1") -> bool:
        with timed("redis", "add"):
            try:
                return bool(self._redis().set(key, value, nx=True, px=_ms(ttl_s)))
            except redis.RedisError as exc:
                raise self._unavailable(exc) from exc

    def _script(self, operation: str, keys: Sequence[str], args: Sequence[str | int]) -> Any:
        with timed("redis", operation):
            try:
                self._redis()
                return self._scripts[operation](keys=list(keys), args=list(args))
            except redis.RedisError as exc:
                raise self._unavailable(exc) from exc

    def add_many(self, keys: Sequence[str], ttl_s: float, values: Sequence[str] | None = None) -> list[bool]:
        if not keys:
            return []
        return [answer == 1 for answer in self._script("add_many", keys, [_ms(ttl_s), *(values or [])])]

    def claim_many(self, keys: Sequence[str], ttl_s: float, values: Sequence[str]) -> list[str]:
        if not keys:
            return []
        # The script reads each key right after its SET NX, atomically: it is always there.
        return [str(value) for value in self._script("claim_many", keys, [_ms(ttl_s), *values])]

    def get(self, key: str) -> str | None:
        with timed("redis", "get"):
            try:
                value = self._redis().get(key)
            except redis.RedisError as exc:
                raise self._unavailable(exc) from exc
        return None if value is None else str(value)

    def put(self, key: str, value: str, ttl_s: float) -> None:
        with timed("redis", "put"):
            try:
                self._redis().set(key, value, px=_ms(ttl_s))
            except redis.RedisError as exc:
                raise self._unavailable(exc) from exc

    def put_many(self, keys: Sequence[str], value: str, ttl_s: float) -> None:
        if not keys:
            return
        with timed("redis", "put_many"):
            try:
                pipe = self._redis().pipeline(transaction=True)  # all or none, as SQLite's
                for key in keys:
                    pipe.set(key, value, px=_ms(ttl_s))
                pipe.execute()
            except redis.RedisError as exc:
                raise self._unavailable(exc) from exc

    def delete(self, key: str, only_if: str | None = None) -> bool:
        if only_if is not None:
            return bool(self._script("delete", [key], [only_if]))
        with timed("redis", "delete"):
            try:
                return bool(self._redis().delete(key))
            except redis.RedisError as exc:
                raise self._unavailable(exc) from exc

    def ping(self) -> None:
        with timed("redis", "ping"):
            try:
                self._redis().ping()
            except redis.RedisError as exc:
                raise self._unavailable(exc) from exc

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
            self._client = None
