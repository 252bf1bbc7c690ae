"""Backoff bounds and the breaker's sliding window."""

import random
from dataclasses import FrozenInstanceError

import pytest

from consumers.breaker import Breaker
from consumers.errors import PermanentError, TransientError, is_transient
from consumers.retry import RetryPolicy
from hookstream.settings import Settings


def test_delays_are_bounded_in_count_and_total_time() -> None:
    policy = RetryPolicy(max_attempts=5, max_seconds=60, base_delay_s=0.5, max_delay_s=30)
    for seed in range(200):
        waits = list(policy.delays(random.Random(seed)))
        assert len(waits) == 4  # 5 attempts, 4 waits between them
        for attempt, wait in enumerate(waits, 1):
            assert 0 <= wait <= 0.5 * 2 ** (attempt - 1)


def test_an_outage_is_waited_out_at_the_capped_backoff_with_no_attempt_limit() -> None:
    policy = RetryPolicy(max_attempts=2, max_seconds=1, base_delay_s=0.01, max_delay_s=100)
    waits = [policy.outage_delay(attempt) for attempt in range(1, 10_000)]  # past any budget
    assert all(0 <= wait <= 0.01 * 2**9 for wait in waits)  # the exponent stops at 10 attempts
    assert max(waits[20:]) > 0.01 * 2**8  # and stays there


def test_the_total_time_budget_cuts_retries_short() -> None:
    policy = RetryPolicy(max_attempts=100, max_seconds=3, base_delay_s=1, max_delay_s=2)
    for seed in range(50):
        waits = list(policy.delays(random.Random(seed)))
        # The budget is spent to the last moment: the waits are the backoff's own draws, but
        # the final one is cut to what was left ...
        rng = random.Random(seed)
        draws = [policy.delay(attempt, rng) for attempt in range(1, len(waits) + 1)]
        assert waits[:-1] == draws[:-1]
        assert waits[-1] <= draws[-1]
        assert sum(waits) == pytest.approx(3.0)
        # ... and nothing follows it: no zero-length retries once the budget is gone.
        assert all(wait > 0 for wait in waits)
        assert len(waits) < 10


def test_a_budget_never_reached_leaves_every_wait_uncut() -> None:
    policy = RetryPolicy(max_attempts=4, max_seconds=1000, base_delay_s=1, max_delay_s=2)
    waits = list(policy.delays(random.Random(3)))
    rng = random.Random(3)
    assert waits == [policy.delay(attempt, rng) for attempt in (1, 2, 3)]


def test_backoff_grows_exponentially_up_to_its_cap() -> None:
    policy = RetryPolicy(base_delay_s=0.1, max_delay_s=1.0)
    rng = random.Random(7)
    ceilings = [max(policy.delay(n, rng) for _ in range(500)) for n in (1, 2, 3, 4, 8)]
    # 500 uniform draws come within 10% of their ceiling: 0.1, 0.2, 0.4, 0.8, then the 1.0 cap.
    for ceiling, drawn in zip((0.1, 0.2, 0.4, 0.8, 1.0), ceilings, strict=True):
        assert 0.9 * ceiling < drawn <= ceiling


def test_one_attempt_means_no_retry() -> None:
    assert list(RetryPolicy(max_attempts=1).delays()) == []


def test_transient_means_network_and_timeouts_and_the_marked_ones() -> None:
    assert is_transient(TransientError("503"))
    assert is_transient(TimeoutError()) and is_transient(ConnectionResetError())
    assert not is_transient(PermanentError("404")) and not is_transient(ValueError("bug"))


def test_breaker_opens_only_above_the_ratio() -> None:
    breaker = Breaker(window=10, ratio=0.5)
    for dead in [True, False] * 5:  # exactly half: still closed
        breaker.record(dead)
    assert not breaker.is_open
    assert breaker.describe() == "5 of the last 10 records went to the DLQ (limit 5)"
    breaker.record(True)  # the oldest outcome (dead) slides out: still 5 of 10
    assert breaker.describe().startswith("5 of the last 10 ") and not breaker.is_open
    breaker.record(True)
    assert breaker.describe().startswith("6 of the last 10 ") and breaker.is_open


def test_breaker_window_forgets_old_failures() -> None:
    breaker = Breaker(window=100, ratio=0.5)
    for _ in range(50):
        breaker.record(True)
    for _ in range(100):
        breaker.record(False)
    assert breaker.describe().startswith("0 of the last 100 ") and not breaker.is_open
    for _ in range(51):
        breaker.record(True)
    assert breaker.is_open


def test_a_burst_on_a_young_member_opens_it() -> None:
    breaker = Breaker(window=100, ratio=0.5)
    for _ in range(51):
        breaker.record(True)
    assert breaker.is_open


def test_the_retry_policy_is_the_documented_one_and_follows_the_settings() -> None:
    # docs/consumers.md: "exponential backoff with full jitter from 0.5 s (cap 30 s)".
    policy = RetryPolicy.from_settings(Settings(retry_max_attempts=3, retry_max_seconds=7.5))
    assert policy == RetryPolicy(max_attempts=3, max_seconds=7.5, base_delay_s=0.5, max_delay_s=30.0)
    assert RetryPolicy() == RetryPolicy.from_settings(Settings())
    with pytest.raises(FrozenInstanceError):  # one policy is shared by every record of a member
        policy.max_attempts = 9  # type: ignore[misc]


def _after_a_full_window_of_dead_letters_and_one_success(breaker: Breaker) -> str:
    for _ in range(100):
        breaker.record(True)
    breaker.record(False)
    return breaker.describe()


def test_the_breaker_follows_the_settings_and_its_defaults_are_theirs() -> None:
    expected = "99 of the last 100 records went to the DLQ (limit 50)"
    assert _after_a_full_window_of_dead_letters_and_one_success(Breaker()) == expected
    assert _after_a_full_window_of_dead_letters_and_one_success(Breaker.from_settings(Settings())) == expected
    custom = Breaker.from_settings(Settings(breaker_window=10, breaker_ratio=0.3))
    assert _after_a_full_window_of_dead_letters_and_one_success(custom) == (
        "9 of the last 10 records went to the DLQ (limit 3)"
    )
