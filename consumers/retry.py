"""Exponential backoff with full jitter, bounded in attempts and in total time."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from hookstream.settings import Settings


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    max_seconds: float = 60.0
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(max_attempts=settings.retry_max_attempts, max_seconds=settings.retry_max_seconds)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        Full jitter (a uniform draw below the exponential ceiling) spreads retries of many
        members hitting the same failing service, instead of having them retry in lockstep.
        """
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return (rng or random).uniform(0.0, ceiling)

    def outage_delay(self, attempt: int) -> float:
        """The wait after failed attempt `attempt` while a shared system is down (the registry, the
        state store): waited out with no budget, the same backoff, its exponent capped."""
        return self.delay(min(attempt, 10))

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """The waits between attempts: at most max_attempts - 1 of them, summing to at most
        max_seconds (the last wait is cut short rather than overrunning the budget)."""
        budget = self.max_seconds
        for attempt in range(1, self.max_attempts):
            if budget <= 0:
                return
            wait = min(self.delay(attempt, rng), budget)
            budget -= wait
            yield wait
