"""The runtime against a real broker: poison and failures to the DLQ while the group keeps
going, retries in place, the circuit breaker, two members sharing a topic through a rebalance."""

from __future__ import annotations

import gc
import time
from collections import Counter, defaultdict
from dataclasses import replace

from consumers import dlq
from consumers.breaker import Breaker
from consumers.dlq import DeadLetterPublisher, read_dead_letters
from consumers.errors import (
    CircuitOpenError,
    DeadLetterError,
    PermanentError,
    TransientError,
    UnavailableError,
)
from consumers.handler import Record
from consumers.retry import RetryPolicy
from consumers.runtime import YOUNG_COLLECTION_THRESHOLD, Member
from hookstream.settings import Settings
from schemas import codec
from tests.integration.consumers.consumer_helpers import (
    Recorder,
    Running,
    committed_and_ends,
    envelope,
    fast,
    lag_is_zero,
    produce,
    sample,
    unique,
    wait_until,
)


def _processed(group: str) -> float:
    return sample("hookstream_consumer_messages_processed_total", group=group)


def test_poison_and_failures_reach_the_dlq_with_headers_while_the_group_keeps_going(
    settings: Settings,
) -> None:
    settings = fast(settings)
    good = [envelope(n) for n in range(40)]
    valid = codec.encode(envelope(99))
    unknown_version = bytes([codec.MAGIC, 99]) + valid[2:]
    empty_workspace = replace(envelope(98), workspace_id="", partition_key="")
    bad: list[codec.Envelope | tuple[bytes, bytes]] = [
        (b"ws-1", b"\x00\x01random bytes"),
        (b"ws-2", valid[:-7]),  # truncated Avro
        (b"ws-3", unknown_version),
        (b"ws-4", codec.encode(empty_workspace)),
        envelope(97, event_type="reject.me"),  # the handler refuses it: permanent
        envelope(96, event_type="flaky.forever"),  # transient every time: retries run out
    ]
    sent = produce(settings, [*good[:20], *bad, *good[20:]])

    def fail(record: Record) -> Exception | None:
        if record.envelope.event_type == "reject.me":
            return PermanentError("payload rejected by the handler")
        if record.envelope.event_type == "flaky.forever":
            return TransientError("downstream keeps timing out")
        return None

    group = unique("poison")
    handler = Recorder(fail)
    policy = RetryPolicy(max_attempts=3, max_seconds=5, base_delay_s=0.01, max_delay_s=0.05)
    running = Running(Member(settings, group, handler, retry=policy, lag_interval_s=0.5))
    try:
        wait_until(lambda: _processed(group) >= 46, what="all 46 records processed")
        wait_until(lambda: lag_is_zero(group, settings.topic, 4), what="lag back to 0")
    finally:
        running.stop()
    assert running.error is None

    assert sorted(handler.handled()) == sorted(e.event_id for e in good)  # each valid one, once
    assert handler.attempts["evt-96"] == 3
    letters = {letter.value: letter for letter in read_dead_letters(settings)}
    bad_values = [item[1] if isinstance(item, tuple) else codec.encode(item) for item in bad]
    assert sorted(letters) == sorted(bad_values)  # the original bytes, unchanged
    reasons = Counter(letter.header(dlq.REASON) for letter in letters.values())
    assert reasons == {"poison": 4, "permanent": 1, "retries_exhausted": 1}
    for value, letter in letters.items():
        partition, offset = sent.positions[value]
        assert letter.header(dlq.ORIGINAL_TOPIC) == settings.topic
        assert (letter.header(dlq.ORIGINAL_PARTITION), letter.header(dlq.ORIGINAL_OFFSET)) == (
            str(partition),
            str(offset),
        )
        assert letter.group == group
        assert letter.header(dlq.ERROR_CLASS) and letter.header(dlq.ERROR_MESSAGE)
        assert letter.header(dlq.ORIGINAL_TIMESTAMP).isdigit() and letter.failed_at is not None
    flaky = next(lt for lt in letters.values() if lt.header(dlq.REASON) == "retries_exhausted")
    assert (flaky.header(dlq.ATTEMPTS), flaky.event_id, flaky.key) == ("3", "evt-96", b"ws-0")
    assert sample("hookstream_consumer_dead_lettered_total", group=group, reason="poison") == 4
    assert sample("hookstream_consumer_retries_total", group=group) == 2

    committed, ends = committed_and_ends(settings, settings.consumer_group_prefix + group)
    assert committed == ends


def test_transient_failures_are_retried_in_place_and_the_member_keeps_its_partitions(
    settings: Settings,
) -> None:
    # One record fails for longer than max.poll.interval.ms: the member must keep polling
    # (paused) and keep its partitions, then process it and everything after it, in order.
    settings = fast(settings)
    events = [envelope(n, workspace="ws-same") for n in range(12)]
    produce(settings, events)
    first_try: dict[str, float] = {}

    def fail(record: Record) -> Exception | None:
        if record.envelope.event_id != "evt-3":
            return None
        started = first_try.setdefault("evt-3", time.monotonic())
        return TransientError("503 from downstream") if time.monotonic() - started < 7.5 else None

    group = unique("flaky")
    handler = Recorder(fail)
    policy = RetryPolicy(max_attempts=100, max_seconds=30, base_delay_s=0.2, max_delay_s=1.0)
    member = Member(settings, group, handler, retry=policy, max_poll_interval_ms=6000)
    running = Running(member)
    try:
        wait_until(lambda: _processed(group) >= 12, what="all 12 records processed")
        rebalances = {
            kind: sample("hookstream_consumer_rebalances_total", group=group, kind=kind)
            for kind in ("assign", "revoke", "lost")
        }
    finally:
        running.stop()
    assert running.error is None
    assert handler.handled() == [e.event_id for e in events]  # order kept around the retries
    assert handler.attempts["evt-3"] > 3
    assert sample("hookstream_consumer_retries_total", group=group) == handler.attempts["evt-3"] - 1
    assert rebalances == {"assign": 1, "revoke": 0, "lost": 0}  # the slow record cost no partition
    assert list(read_dead_letters(settings)) == []


def test_an_unavailable_state_store_is_waited_out_past_the_retry_budget_never_dead_lettered(
    settings: Settings,
) -> None:
    settings = fast(settings)
    events = [envelope(n, workspace="ws-same") for n in range(6)]
    produce(settings, events)
    first_try: dict[str, float] = {}

    def fail(record: Record) -> Exception | None:
        if record.envelope.event_id != "evt-2":
            return None
        started = first_try.setdefault("evt-2", time.monotonic())
        return (
            UnavailableError("state store: connection refused") if time.monotonic() - started < 2.0 else None
        )

    group = unique("store-down")
    handler = Recorder(fail)
    # A budget the outage outlasts: 3 attempts within 0.3 s.
    policy = RetryPolicy(max_attempts=3, max_seconds=0.3, base_delay_s=0.05, max_delay_s=0.1)
    running = Running(Member(settings, group, handler, retry=policy))
    try:
        wait_until(lambda: _processed(group) >= 6, what="all 6 records processed")
    finally:
        running.stop()
    assert running.error is None
    assert handler.handled() == [e.event_id for e in events]
    assert handler.attempts["evt-2"] > 3
    assert list(read_dead_letters(settings)) == []


def test_the_circuit_breaker_trips_when_most_recent_records_fail_and_not_before(settings: Settings) -> None:
    settings = fast(settings, breaker_window=10, breaker_ratio=0.5)
    # 30 records where 2 of every 5 fail (40%: the group must keep going), then 20 failing ones.
    pattern = [False, True, False, True, False] * 6 + [True] * 20
    events = [
        envelope(n, workspace="ws-one", event_type="bad" if bad else "good") for n, bad in enumerate(pattern)
    ]
    produce(settings, events)
    expected = Breaker(10, 0.5)  # the same window fed the same outcomes finds the trip point
    for trip_at, bad in enumerate(pattern):  # noqa: B007 - the loop variable is the answer
        expected.record(bad)
        if expected.is_open:
            break
    assert 30 < trip_at < 49

    group = unique("breaker")
    handler = Recorder(lambda r: PermanentError("bad deploy") if r.envelope.event_type == "bad" else None)
    running = Running(Member(settings, group, handler))
    running.thread.join(60)
    assert isinstance(running.error, CircuitOpenError)
    assert "dlq list --group" in str(running.error)
    assert sample("hookstream_consumer_circuit_open", group=group) == 1

    assert len(handler.handled()) == pattern[: trip_at + 1].count(False)
    letters = list(read_dead_letters(settings))
    assert len(letters) == pattern[: trip_at + 1].count(True)  # the rest of the topic was not drained
    committed, ends = committed_and_ends(settings, settings.consumer_group_prefix + group)
    assert sum(committed) == trip_at + 1 < sum(ends)  # up to the tripping record, not one further


def test_two_members_split_the_partitions_keep_order_and_lose_nothing_in_a_rebalance(
    settings: Settings,
) -> None:
    # The first member's batch (the whole backlog) takes longer than its keepalive interval, so
    # the second member's join reaches it in the middle of the batch: it must commit what it did,
    # drop the rest of the revoked partitions' records, and the new owner must start right there.
    # Two batches of backlog: the join lands in the first, and the second leaves the joiner
    # work even when the two-step cooperative hand-over is slow (the first batch alone was
    # sometimes finished before the second member was given a partition).
    settings = fast(settings, consumer_batch_size=200)
    events = [envelope(n) for n in range(400)]
    produce(settings, events)
    log: list[tuple[str, Record]] = []
    group = unique("pair")
    first = Recorder(delay_s=0.03, log=log, tag="a")
    second = Recorder(delay_s=0.03, log=log, tag="b")
    a = Running(Member(settings, group, first, max_poll_interval_ms=6000))
    b: Running | None = None
    try:
        wait_until(lambda: len(log) >= 20, what="the first member to start")
        b = Running(Member(settings, group, second, max_poll_interval_ms=6000))
        wait_until(lambda: len({r.envelope.event_id for _, r in log}) == 400, 120, "all 400 events")
        revokes = sample("hookstream_consumer_rebalances_total", group=group, kind="revoke")
    finally:
        a.stop()
        if b is not None:
            b.stop()
    assert a.error is None and b is not None and b.error is None

    seen = [record for _, record in log]
    assert len(seen) == len({r.envelope.event_id for r in seen}) == 400  # none lost, none twice
    owners: dict[int, list[str]] = defaultdict(list)
    for tag, record in log:
        if not owners[record.partition] or owners[record.partition][-1] != tag:
            owners[record.partition].append(tag)
    # Each partition moved at most once, from the first member to the second, and both worked.
    assert all(tags in (["a"], ["b"], ["a", "b"]) for tags in owners.values())
    assert {"a", "b"} == {tag for tags in owners.values() for tag in tags}
    order: dict[str, list[int]] = defaultdict(list)
    for record in seen:
        order[record.envelope.workspace_id].append(int(record.envelope.event_id.removeprefix("evt-")))
    assert all(numbers == sorted(numbers) for numbers in order.values())  # per-workspace order held
    assert revokes >= 1
    committed, ends = committed_and_ends(settings, settings.consumer_group_prefix + group)
    assert committed == ends


def test_a_dead_letter_waits_for_kafkas_ack_before_its_offset_moves(settings: Settings) -> None:
    # With the DLQ topic missing, no acknowledgement can come: the member must stop with the
    # poison record's offset uncommitted, so nothing is lost.
    settings = fast(replace(settings, dlq_topic=f"{settings.dlq_topic}-missing"))
    produce(settings, [envelope(1, workspace="ws-x"), (b"ws-x", b"poison")])
    group = unique("noack")
    publisher = DeadLetterPublisher(settings, group, ack_timeout_s=3)
    running = Running(Member(settings, group, Recorder(), dead_letters=publisher))
    running.thread.join(60)
    assert isinstance(running.error, DeadLetterError)
    committed, ends = committed_and_ends(settings, settings.consumer_group_prefix + group)
    assert sum(ends) == 2 and sum(committed) <= 1


def test_a_member_sets_the_collector_up_for_its_loop(settings: Settings) -> None:
    """What setup left is frozen and young collections are rare, from the member's start."""
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)  # CPython's defaults, as a process starts
    running = Running(Member(settings, unique("collector"), Recorder()))
    try:
        wait_until(lambda: gc.get_threshold()[0] == YOUNG_COLLECTION_THRESHOLD, timeout_s=30)
        assert gc.get_freeze_count() > 0
    finally:
        running.stop()
