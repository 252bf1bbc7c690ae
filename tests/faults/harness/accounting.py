"""Closing a scenario's books: wait until the groups caught up, count everything, write the row."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.faults.harness import sinks
from tests.faults.harness.kafka_reader import Record, event_ids, group_lag, read_all
from tests.faults.harness.ledger import Ledger, Reckoning, reckon
from tests.faults.harness.processes import Pipeline
from tests.faults.harness.receiver import NotificationReceiver


def dead_lettered(dlq: list[Record]) -> dict[str, set[str]]:
    """Event ids each group sent to the DLQ (records without an event_id header are poison)."""
    found: dict[str, set[str]] = {}
    for record in dlq:
        group, event_id = record.header("dlq.group"), record.header("event_id")
        if group and event_id:
            found.setdefault(group, set()).add(event_id)
    return found


# Reads every group's sink: the embedded ones under the pipeline's data dir by default.
Effects = Callable[[], dict[str, Counter[str]]]


def settle(
    pipeline: Pipeline,
    receiver: NotificationReceiver,
    expected: set[str],
    groups: tuple[str, ...] = sinks.GROUPS,
    timeout_s: float = 120.0,
    members_killed: bool = False,
    effects: Effects | None = None,
) -> tuple[dict[str, Counter[str]], list[Record]]:
    """Poll the sinks until every expected event is in each group's sink or its DLQ share.

    Returns what was found either way: the ledger, not this wait, decides pass or fail.
    """
    read = effects or (lambda: sinks.effects(pipeline.data_dir, pipeline.topic, receiver, members_killed))
    deadline = time.monotonic() + timeout_s
    while True:
        found = read()
        dlq = read_all(pipeline.bootstrap, pipeline.dlq_topic)
        dead = dead_lettered(dlq)
        missing = {g: expected - set(found[g]) - dead.get(g, set()) for g in groups}
        if not any(missing.values()) or time.monotonic() > deadline:
            return {g: found[g] for g in groups}, dlq
        time.sleep(2.0)


def close_books(
    scenario: str,
    pipeline: Pipeline,
    receiver: NotificationReceiver,
    ledger: Ledger,
    sent: set[str],
    accepted: set[str],
    groups: tuple[str, ...] = sinks.GROUPS,
    settle_timeout_s: float = 120.0,
    members_killed: bool = False,
    notes: dict[str, Any] | None = None,
    effects: Effects | None = None,
) -> Reckoning:
    """Count where every accepted event ended up, record the ledger row, and return it.

    `members_killed`: a consumer was SIGKILLed, so a notification repeated under the same
    Idempotency-Key is the one request that was in flight (see receiver.py), not a duplicate.
    """
    found, dlq = settle(pipeline, receiver, accepted, groups, settle_timeout_s, members_killed, effects)
    in_kafka = event_ids(read_all(pipeline.bootstrap, pipeline.topic))
    # Copies are allowed in Kafka (a 503'd record may land after all, and the sender retries);
    # the groups must absorb them by event_id.
    copies = {
        "of_2xx": sum(1 for e in accepted if in_kafka[e] > 1),
        "of_all": sum(1 for n in in_kafka.values() if n > 1),
    }
    result = reckon(
        scenario,
        sent=sent,
        accepted=accepted,
        in_kafka=in_kafka,
        effects=found,
        dead_lettered=dead_lettered(dlq),
        dlq_records=len(dlq),
        crash_window=receiver.raw_repeats(),
        notes={
            "events_with_kafka_copies": copies,
            "notifications_without_idempotency_key": receiver.keys_missing(),
            **(notes or {}),
        },
    )
    ledger.record(result.row)
    print(f"\nledger {scenario}: {result.row}\n{result.explain()}")
    return result


def wait_caught_up(pipeline: Pipeline, groups: tuple[str, ...], timeout_s: float = 120.0) -> dict[str, int]:
    """Until each group's committed offsets reach the end of every partition; the lag left
    (auto-commit runs every few seconds, so an idle group gets there soon after its work)."""
    deadline = time.monotonic() + timeout_s
    while True:
        lag = {
            g: sum(group_lag(pipeline.bootstrap, pipeline.group_id(g), pipeline.topic).values())
            for g in groups
        }
        if not any(lag.values()) or time.monotonic() > deadline:
            return lag
        time.sleep(2)
