"""A bounded, paced load of signed webhooks on loopback that remembers every answer.

Bounded in count and in time; a few threads pace events at a steady rate. A 503 or no answer
is retried with the same body and event_id a couple of times, as Fast.io would, so the
producer's dedupe is exercised too. Only a 2xx counts as accepted: that is the promise.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

from tests.faults.harness.webhooks import Webhook


@dataclass(frozen=True)
class Attempt:
    event_id: str
    status: int | None  # None: no answer at all (refused, reset, timed out)
    started_at: float  # time.monotonic() when the request was sent
    elapsed_s: float
    duplicate: bool = False
    retry_after: str | None = None
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def post(session: requests.Session, base_url: str, hook: Webhook, timeout_s: float) -> Attempt:
    started = time.monotonic()
    try:
        resp = session.post(
            base_url + hook.request.path,
            data=hook.request.body,
            headers=hook.request.headers,
            timeout=timeout_s,
        )
    except requests.RequestException as exc:
        return Attempt(hook.event_id, None, started, time.monotonic() - started, error=type(exc).__name__)
    elapsed = time.monotonic() - started
    duplicate = False
    if resp.headers.get("Content-Type", "").startswith("application/json"):
        try:
            body = resp.json()
            duplicate = isinstance(body, dict) and body.get("duplicate") is True
        except ValueError:
            pass
    return Attempt(
        hook.event_id, resp.status_code, started, elapsed, duplicate, resp.headers.get("Retry-After")
    )


class LoadGenerator:
    """`count` webhooks from `make(n)`, paced at `rate_per_s`, for at most `max_seconds`."""

    def __init__(
        self,
        base_url: str,
        make: Callable[[int], Webhook],
        count: int,
        rate_per_s: float = 20.0,
        threads: int = 4,
        max_seconds: float = 180.0,
        retries: int = 2,
        timeout_s: float = 15.0,
    ) -> None:
        self.base_url = base_url
        self.make = make
        self.count = count
        self.rate_per_s = rate_per_s
        self.threads = threads
        self.max_seconds = max_seconds
        self.retries = retries
        self.timeout_s = timeout_s
        self.webhooks: dict[str, Webhook] = {}
        self.attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._next = 0
        self._stop = threading.Event()
        self._workers: list[threading.Thread] = []
        self._started_at = 0.0

    def start(self) -> LoadGenerator:
        self._started_at = time.monotonic()
        self._workers = [
            threading.Thread(target=self._work, name=f"load-{i}", daemon=True) for i in range(self.threads)
        ]
        for worker in self._workers:
            worker.start()
        return self

    def run(self) -> LoadGenerator:
        return self.start().wait()

    def wait(self) -> LoadGenerator:
        for worker in self._workers:
            worker.join(self.max_seconds + self.timeout_s * (self.retries + 2))
        return self

    def stop(self) -> LoadGenerator:
        self._stop.set()
        return self.wait()

    @property
    def done(self) -> bool:
        return all(not w.is_alive() for w in self._workers)

    def _claim(self) -> int | None:
        with self._lock:
            if self._next >= self.count or self._stop.is_set():
                return None
            n, self._next = self._next, self._next + 1
            return n

    def _work(self) -> None:
        deadline = self._started_at + self.max_seconds
        with requests.Session() as session:
            while (n := self._claim()) is not None:
                due = self._started_at + n / self.rate_per_s
                if due > deadline:
                    return
                if self._stop.wait(max(0.0, due - time.monotonic())):
                    return
                hook = self.make(n)
                with self._lock:
                    self.webhooks[hook.event_id] = hook
                self._deliver(session, hook)

    def _deliver(self, session: requests.Session, hook: Webhook) -> None:
        for attempt_no in range(self.retries + 1):
            attempt = post(session, self.base_url, hook, self.timeout_s)
            with self._lock:
                self.attempts.append(attempt)
            if attempt.status is not None and attempt.status != 503:
                return
            if attempt_no < self.retries and not self._stop.wait(0.5 * 2**attempt_no):
                continue
            return

    # -- what happened ------------------------------------------------------------------------

    def sent(self) -> set[str]:
        with self._lock:
            return set(self.webhooks)

    def accepted(self) -> set[str]:
        with self._lock:
            return {a.event_id for a in self.attempts if a.accepted}

    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._lock:
            for a in self.attempts:
                key = str(a.status) if a.status is not None else "no-answer"
                counts[key] = counts.get(key, 0) + 1
        return counts


def wait_for_status(url: str, status: int = 200, timeout_s: float = 120.0) -> list[int | None]:
    """GET `url` until it answers `status`; every answer seen on the way (None: no answer)."""
    seen: list[int | None] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            seen.append(requests.get(url, timeout=5).status_code)
        except requests.RequestException:
            seen.append(None)
        if seen[-1] == status:
            return seen
        time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer {status} within {timeout_s:.0f}s; answers: {seen[-5:]}")
