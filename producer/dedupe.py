"""Answer a sender's retry of an accepted event without producing it again (one process).

Fast.io retries a delivery it thinks failed; within `window_s` the retry gets 200 with
`"duplicate": true` and no second record. Two copies arriving at once yield one record: the
first claims the event_id, the second waits for the first's outcome and shares it. An event
is remembered only once Kafka acknowledged it, so a failed first attempt leaves the next
retry free to try again. This is an optimisation, not the guarantee: other workers and
processes do not see this memory, and consumers deduplicate by event_id across all of them.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from enum import Enum

# Bounds memory at sustained high rates (about 200 bytes per entry); past it, the oldest
# entries are forgotten early, which costs at most a duplicate record, never a lost one.
MAX_ENTRIES = 200_000


class Claim(Enum):
    OWNER = "owner"  # produce it, then call settle()
    SEEN = "seen"  # accepted before (or just now, by the request we waited for)
    FAILED = "failed"  # the in-flight copy we waited for was not accepted


class _InFlight:
    __slots__ = ("copies", "outcome")

    def __init__(self) -> None:
        self.outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()  # accepted?
        self.copies = 0  # requests waiting on this one


class Deduper:
    """Used from one event loop (the worker's): no locks, nothing here blocks the loop."""

    def __init__(
        self, window_s: float, max_entries: int = MAX_ENTRIES, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # key -> expiry, oldest first
        self._in_flight: dict[str, _InFlight] = {}

    async def claim(self, key: str, timeout_s: float) -> Claim:
        """OWNER when this request should produce `key`; else what became of the copy before it."""
        expiry = self._seen.get(key)
        if expiry is not None:
            if expiry > self._clock():
                return Claim.SEEN
            del self._seen[key]
        pending = self._in_flight.get(key)
        if pending is None:
            self._in_flight[key] = _InFlight()
            return Claim.OWNER
        pending.copies += 1
        try:
            # shield: a copy giving up must not cancel the outcome the other copies await.
            accepted = await asyncio.wait_for(asyncio.shield(pending.outcome), timeout_s)
        except TimeoutError:
            return Claim.FAILED
        finally:
            pending.copies -= 1
        return Claim.SEEN if accepted else Claim.FAILED

    def settle(self, key: str, accepted: bool) -> None:
        """The owner's outcome: remember `key` if Kafka holds it, and wake any waiting copies."""
        pending = self._in_flight.pop(key)
        if accepted and self.window_s > 0:
            now = self._clock()
            self._seen[key] = now + self.window_s
            self._seen.move_to_end(key)
            self._evict(now)
        pending.outcome.set_result(accepted)

    def waiting(self, key: str) -> int:
        """How many copies of `key` wait for the one in flight (0 when none is)."""
        pending = self._in_flight.get(key)
        return pending.copies if pending is not None else 0

    def __len__(self) -> int:
        return len(self._seen)

    def _evict(self, now: float) -> None:
        seen = self._seen
        while seen and (len(seen) > self.max_entries or next(iter(seen.values())) <= now):
            seen.popitem(last=False)
