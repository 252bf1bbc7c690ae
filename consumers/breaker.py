"""The circuit breaker: stop a member whose recent records mostly went to the DLQ.

A bad deploy (or a broken downstream that answers 4xx) would otherwise dead-letter the whole
topic at full speed. Counting over a sliding window of outcomes keeps one poison record, or a
short burst, from stopping a healthy group.
"""

from __future__ import annotations

from collections import deque

from hookstream.settings import Settings


class Breaker:
    def __init__(self, window: int = 100, ratio: float = 0.5) -> None:
        self.window = window
        # More than this many dead letters among the last `window` outcomes opens the circuit.
        self.limit = int(window * ratio)
        self._outcomes: deque[bool] = deque(maxlen=window)
        self._dead = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> Breaker:
        return cls(settings.breaker_window, settings.breaker_ratio)

    def record(self, dead_lettered: bool) -> None:
        if len(self._outcomes) == self.window and self._outcomes[0]:
            self._dead -= 1
        self._outcomes.append(dead_lettered)
        self._dead += dead_lettered

    @property
    def is_open(self) -> bool:
        return self._dead > self.limit

    def describe(self) -> str:
        return f"{self._dead} of the last {len(self._outcomes)} records went to the DLQ (limit {self.limit})"
