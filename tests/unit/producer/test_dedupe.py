"""The in-process event_id window: one record per event, even for copies arriving together."""

from __future__ import annotations

import threading
import time

from producer.dedupe import Claim, Deduper


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_accepted_event_is_seen_until_the_window_ends() -> None:
    clock = Clock()
    dedupe = Deduper(window_s=600, clock=clock)
    assert dedupe.claim("fastio:e1", 1) is Claim.OWNER
    dedupe.settle("fastio:e1", accepted=True)
    assert dedupe.claim("fastio:e1", 1) is Claim.SEEN
    clock.now += 601
    assert dedupe.claim("fastio:e1", 1) is Claim.OWNER


def test_a_failed_event_is_not_remembered() -> None:
    dedupe = Deduper(window_s=600)
    assert dedupe.claim("k", 1) is Claim.OWNER
    dedupe.settle("k", accepted=False)
    assert dedupe.claim("k", 1) is Claim.OWNER


def test_a_zero_window_remembers_nothing() -> None:
    dedupe = Deduper(window_s=0)
    dedupe.claim("k", 1)
    dedupe.settle("k", accepted=True)
    assert dedupe.claim("k", 1) is Claim.OWNER
    assert len(dedupe) == 0


def test_memory_is_bounded_and_the_oldest_are_forgotten_first() -> None:
    dedupe = Deduper(window_s=600, max_entries=3)
    for key in "abcd":
        dedupe.claim(key, 1)
        dedupe.settle(key, accepted=True)
    assert len(dedupe) == 3
    assert dedupe.claim("a", 1) is Claim.OWNER
    assert dedupe.claim("d", 1) is Claim.SEEN


def _race(dedupe: Deduper, copies: int) -> tuple[list[Claim], threading.Event]:
    """`copies` claims of one key while the first is held in flight; returns their outcomes."""
    assert dedupe.claim("k", 1) is Claim.OWNER
    results: list[Claim] = []
    started = threading.Barrier(copies + 1)

    def copy() -> None:
        started.wait()
        results.append(dedupe.claim("k", 10))

    threads = [threading.Thread(target=copy) for _ in range(copies)]
    for thread in threads:
        thread.start()
    started.wait()
    while dedupe.waiting("k") < copies:  # every copy is blocked on the first before it settles
        time.sleep(0.01)
    done = threading.Event()
    threading.Thread(target=lambda: ([t.join() for t in threads], done.set())).start()
    return results, done


def test_copies_arriving_while_the_first_is_in_flight_share_its_success() -> None:
    dedupe = Deduper(window_s=600)
    results, done = _race(dedupe, copies=5)
    assert not done.is_set()  # they wait for the owner...
    dedupe.settle("k", accepted=True)
    assert done.wait(5)
    assert results == [Claim.SEEN] * 5  # ...and none of them produces again


def test_copies_share_the_first_ones_failure_and_the_event_stays_unseen() -> None:
    dedupe = Deduper(window_s=600)
    results, done = _race(dedupe, copies=3)
    dedupe.settle("k", accepted=False)
    assert done.wait(5)
    assert results == [Claim.FAILED] * 3
    assert dedupe.claim("k", 1) is Claim.OWNER


def test_a_copy_stops_waiting_at_its_deadline() -> None:
    dedupe = Deduper(window_s=600)
    assert dedupe.claim("k", 1) is Claim.OWNER
    assert dedupe.claim("k", 0.05) is Claim.FAILED
