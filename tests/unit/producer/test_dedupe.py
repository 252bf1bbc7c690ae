"""The in-process event_id window: one record per event, even for copies arriving together."""

from __future__ import annotations

import asyncio

from producer.dedupe import Claim, Deduper


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(check):  # type: ignore[no-untyped-def]
    """Each test body is a coroutine on its own loop, as a worker runs the deduper on its loop."""
    return asyncio.run(check())


def test_an_accepted_event_is_seen_until_the_window_ends() -> None:
    async def check() -> None:
        clock = Clock()
        dedupe = Deduper(window_s=600, clock=clock)
        assert await dedupe.claim("fastio:e1", 1) is Claim.OWNER
        dedupe.settle("fastio:e1", accepted=True)
        assert await dedupe.claim("fastio:e1", 1) is Claim.SEEN
        clock.now += 601
        assert await dedupe.claim("fastio:e1", 1) is Claim.OWNER

    run(check)


def test_a_failed_event_is_not_remembered() -> None:
    async def check() -> None:
        dedupe = Deduper(window_s=600)
        assert await dedupe.claim("k", 1) is Claim.OWNER
        dedupe.settle("k", accepted=False)
        assert await dedupe.claim("k", 1) is Claim.OWNER

    run(check)


def test_a_zero_window_remembers_nothing() -> None:
    async def check() -> None:
        dedupe = Deduper(window_s=0)
        await dedupe.claim("k", 1)
        dedupe.settle("k", accepted=True)
        assert await dedupe.claim("k", 1) is Claim.OWNER
        assert len(dedupe) == 0

    run(check)


def test_memory_is_bounded_and_the_oldest_are_forgotten_first() -> None:
    async def check() -> None:
        dedupe = Deduper(window_s=600, max_entries=3)
        for key in "abcd":
            await dedupe.claim(key, 1)
            dedupe.settle(key, accepted=True)
        assert len(dedupe) == 3
        assert await dedupe.claim("a", 1) is Claim.OWNER
        assert await dedupe.claim("d", 1) is Claim.SEEN

    run(check)


async def _race(dedupe: Deduper, copies: int) -> asyncio.Future[list[Claim]]:
    """`copies` claims of one key while the first is held in flight; returns their outcomes."""
    assert await dedupe.claim("k", 1) is Claim.OWNER
    waiting = asyncio.gather(*(dedupe.claim("k", 10) for _ in range(copies)))
    while dedupe.waiting("k") < copies:  # every copy is blocked on the first before it settles
        await asyncio.sleep(0)
    return waiting


def test_copies_arriving_while_the_first_is_in_flight_share_its_success() -> None:
    async def check() -> None:
        dedupe = Deduper(window_s=600)
        results = await _race(dedupe, copies=5)
        await asyncio.sleep(0.01)
        assert not results.done()  # they wait for the owner...
        dedupe.settle("k", accepted=True)
        assert await asyncio.wait_for(results, 5) == [Claim.SEEN] * 5  # ...and none produces again
        assert dedupe.waiting("k") == 0

    run(check)


def test_copies_share_the_first_ones_failure_and_the_event_stays_unseen() -> None:
    async def check() -> None:
        dedupe = Deduper(window_s=600)
        results = await _race(dedupe, copies=3)
        dedupe.settle("k", accepted=False)
        assert await asyncio.wait_for(results, 5) == [Claim.FAILED] * 3
        assert await dedupe.claim("k", 1) is Claim.OWNER

    run(check)


def test_a_copy_stops_waiting_at_its_deadline_and_the_others_keep_waiting() -> None:
    async def check() -> None:
        dedupe = Deduper(window_s=600)
        assert await dedupe.claim("k", 1) is Claim.OWNER
        patient = asyncio.ensure_future(dedupe.claim("k", 10))
        assert await dedupe.claim("k", 0.05) is Claim.FAILED
        assert not patient.done()  # the impatient copy's timeout did not end the shared wait
        dedupe.settle("k", accepted=True)
        assert await patient is Claim.SEEN

    run(check)
