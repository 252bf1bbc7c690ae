"""How Kafka's acknowledgement reaches the request waiting for it, in the worker's concurrency model.

librdkafka runs delivery callbacks in the publisher's poll thread, a native OS thread.
- Threads (gunicorn's gthread or sync workers): each request blocks on its own lock, which
  the callback releases; nothing else is shared.
- gevent (a monkey-patched worker): a greenlet must not block on a native lock (that would
  stop the hub and every other request), and gevent's own primitives belong to the hub's
  thread. So the callback queues a call and sends the hub's async watcher (libev's
  thread-safe wake-up, coalesced while one is pending); on the hub, the queued calls set each
  waiting greenlet's event. Blocking client calls (readiness) run in gevent's thread pool.
`for_this_worker()` picks the model from whether gevent has patched `threading`.
"""

from __future__ import annotations

import _thread
import sys
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from confluent_kafka import KafkaError

T = TypeVar("T")


class Slot(Protocol):
    """One record's delivery: `deliver` is its on_delivery callback, `wait` the request's wait."""

    error: KafkaError | None

    def deliver(self, error: KafkaError | None, message: Any) -> None: ...

    def wait(self, timeout_s: float) -> bool: ...


class Handoff(Protocol):
    def slot(self) -> Slot: ...

    def call(self, fn: Callable[[], object]) -> None:
        """Run `fn` where requests run (from any thread, e.g. a client callback)."""

    def blocking(self, fn: Callable[[], T]) -> T:
        """Run a call that blocks in C without holding up other requests."""

    def start_thread(self, fn: Callable[[], object]) -> None:
        """Start a native OS thread (a greenlet would block the hub while librdkafka waits)."""


class _LockSlot:
    __slots__ = ("_lock", "error")

    def __init__(self) -> None:
        self.error: KafkaError | None = None
        self._lock = _thread.allocate_lock()
        self._lock.acquire()

    def deliver(self, error: KafkaError | None, message: Any) -> None:
        self.error = error
        self._lock.release()

    def wait(self, timeout_s: float) -> bool:
        return self._lock.acquire(timeout=timeout_s)


class ThreadHandoff:
    def slot(self) -> Slot:
        return _LockSlot()

    def call(self, fn: Callable[[], object]) -> None:
        fn()

    def blocking(self, fn: Callable[[], T]) -> T:
        return fn()

    def start_thread(self, fn: Callable[[], object]) -> None:
        _thread.start_new_thread(fn, ())


class _EventSlot:
    __slots__ = ("_event", "_handoff", "error")

    def __init__(self, handoff: GeventHandoff) -> None:
        from gevent.event import Event

        self.error: KafkaError | None = None
        self._event = Event()
        self._handoff = handoff

    def deliver(self, error: KafkaError | None, message: Any) -> None:
        self.error = error
        self._handoff.call(self._event.set)

    def wait(self, timeout_s: float) -> bool:
        return bool(self._event.wait(timeout_s))


class GeventHandoff:
    """Build it on the hub's thread (the worker's main thread, after gevent patched it)."""

    def __init__(self) -> None:
        from gevent import get_hub, monkey

        self._hub = get_hub()
        self._calls: deque[Callable[[], object]] = deque()  # append/popleft are atomic across threads
        self._watcher = self._hub.loop.async_()
        self._watcher.start(self._run_calls)
        self._watcher.ref = False  # an idle producer must not keep the worker's loop alive at its stop
        self._start_new_thread = monkey.get_original("_thread", "start_new_thread")

    def slot(self) -> Slot:
        return _EventSlot(self)

    def call(self, fn: Callable[[], object]) -> None:
        self._calls.append(fn)
        self._watcher.send()

    def blocking(self, fn: Callable[[], T]) -> T:
        return self._hub.threadpool.apply(fn)  # type: ignore[no-any-return]

    def start_thread(self, fn: Callable[[], object]) -> None:
        self._start_new_thread(fn, ())

    def _run_calls(self) -> None:
        calls = self._calls
        while calls:
            calls.popleft()()


def for_this_worker() -> Handoff:
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None and monkey.is_module_patched("threading"):
        return GeventHandoff()
    return ThreadHandoff()
