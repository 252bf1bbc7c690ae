"""DLQ replay: send dead letters back through the events topic, to the group that failed them.

A replayed record is the original key, value and headers, produced to the events topic with
two more headers: `hookstream.replay.group` (the one group that should process it; every
other group's runtime skips it and moves on) and `hookstream.replay.source` (the DLQ record
it came from). Going through the events topic keeps replay free of a second consume path:
the group processes it like any record, with retries, DLQ and idempotent effects. Its Kafka
timestamp is at least `REPLAY_MIN_AGE_MS` after the original record's, the mark that makes
members read its headers (`consumers.decoding`); a replay of a younger letter waits for it.

"Never twice by accident": a ledger in the state store (`hookstream.state`: Redis when
`HOOKSTREAM_REDIS_URL` is set, else the host's SQLite file) holds every DLQ position already
replayed, and a lock there (SET NX PX with a token, released by compare-and-delete) lets one
replay run at a time, from any host. A replay takes the lock, skips positions in the ledger,
waits for Kafka to acknowledge what it produced, then records those positions. A crash between
the acknowledgement and the record could replay a record again on the next run; the groups'
effects are idempotent by event_id, so even that repeats no effect. Without the store a replay
refuses to run (it could not tell what was replayed before).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from confluent_kafka import Producer

from consumers.dlq import (
    REPLAY_GROUP,
    REPLAY_MIN_AGE_MS,
    REPLAY_SOURCE,
    DeadLetter,
    original_headers,
    read_dead_letters,
)
from consumers.errors import ConsumerError
from hookstream.errors import StateStoreUnavailable
from hookstream.kafka import ProducerConfig
from hookstream.settings import Settings
from hookstream.state import StateStore, open_store, state_key

# A replayed position is remembered far longer than any DLQ retention we configure (7 days by
# default): past the retention the position no longer exists. DLQ records are few, so it is cheap.
LEDGER_TTL_S = 30 * 24 * 3600.0
# The lock outlives the longest replay (reading the DLQ, then up to a minute for Kafka's acks), and
# frees itself if the replay that holds it is killed.
LOCK_TTL_S = 15 * 60.0
LOCK_WAIT_S = 30.0


@dataclass(frozen=True)
class ReplayFilter:
    group: str | None = None
    since: datetime | None = None
    event_id: str | None = None

    def matches(self, letter: DeadLetter) -> bool:
        if letter.group is None:
            return False  # not written by a Hookstream group: nobody to send it back to
        if self.group is not None and letter.group != self.group:
            return False
        if self.event_id is not None and letter.event_id != self.event_id:
            return False
        if self.since is not None:
            failed_at = letter.failed_at
            return failed_at is not None and failed_at >= self.since
        return True


class ReplayLedger:
    """DLQ positions already replayed and the replay lock, in the state store, keyed by DLQ topic."""

    def __init__(self, store: StateStore, dlq_topic: str) -> None:
        self._store = store
        self._dlq_topic = dlq_topic

    def _key(self, partition: int, offset: int) -> str:
        return state_key(self._dlq_topic, "replayed", str(partition), str(offset))

    @contextmanager
    def locked(self, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
        """Hold the replay lock (one replay at a time, across hosts); wait up to `wait_s` for it."""
        key = state_key(self._dlq_topic, "replay-lock")
        token = uuid.uuid4().hex
        deadline = time.monotonic() + wait_s
        while not self._store.add(key, LOCK_TTL_S, token):
            if time.monotonic() > deadline:
                raise ConsumerError(
                    f"another `dlq replay` of {self._dlq_topic} is running (it holds the replay lock); "
                    "run this one again when it finished"
                )
            time.sleep(0.5)
        try:
            yield
        finally:
            # Never another replay's lock. Unreachable now: it frees itself within LOCK_TTL_S.
            with contextlib.suppress(StateStoreUnavailable):
                self._store.delete(key, only_if=token)

    def replayed(self, letters: list[DeadLetter]) -> set[tuple[int, int]]:
        """The positions among `letters` replayed before."""
        positions = [(d.partition, d.offset) for d in letters]
        return {p for p in positions if self._store.get(self._key(*p)) is not None}

    def record(self, letters: list[DeadLetter]) -> None:
        self._store.add_many([self._key(d.partition, d.offset) for d in letters], LEDGER_TTL_S)

    def close(self) -> None:
        self._store.close()


def replay_headers(letter: DeadLetter, dlq_topic: str) -> list[tuple[str, bytes]]:
    assert letter.group is not None
    return [
        *original_headers(letter.headers),
        (REPLAY_GROUP, letter.group.encode()),
        (REPLAY_SOURCE, f"{dlq_topic}:{letter.partition}:{letter.offset}".encode()),
    ]


def replay_timestamp_ms(letter: DeadLetter, now_ms: int) -> int:
    """The replay's Kafka timestamp: now, and at least `REPLAY_MIN_AGE_MS` after the original
    record's (a letter without that header is stamped from now: the safe side)."""
    original = letter.original_timestamp_ms
    return max(now_ms, (now_ms if original is None else original) + REPLAY_MIN_AGE_MS)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class ReplayReport:
    replayed: list[DeadLetter] = field(default_factory=list)
    already: list[DeadLetter] = field(default_factory=list)
    dry_run: bool = False


def replay(settings: Settings, selection: ReplayFilter, dry_run: bool = False) -> ReplayReport:
    """Replay the DLQ records `selection` picks that were never replayed before."""
    ledger = ReplayLedger(open_store(settings), settings.dlq_topic)
    try:
        return _replay(settings, selection, dry_run, ledger)
    except StateStoreUnavailable as exc:
        raise ConsumerError(
            f"dlq replay refuses to run: its ledger is unreachable ({exc}); without it a record could "
            "be replayed twice: bring the state store back (see docs/runbook.md) and run it again"
        ) from exc
    finally:
        ledger.close()


def _replay(settings: Settings, selection: ReplayFilter, dry_run: bool, ledger: ReplayLedger) -> ReplayReport:
    report = ReplayReport(dry_run=dry_run)
    with ledger.locked():
        picked = [letter for letter in read_dead_letters(settings) if selection.matches(letter)]
        done = ledger.replayed(picked)
        for letter in picked:
            (report.already if (letter.partition, letter.offset) in done else report.replayed).append(letter)
        if dry_run or not report.replayed:
            return report
        acked = _produce(settings, report.replayed)
        try:
            ledger.record(acked)
        except StateStoreUnavailable as exc:
            raise ConsumerError(
                f"Kafka acknowledged {len(acked)} replayed records but the ledger could not record them "
                f"({exc}); running the replay again would replay them again (effects are idempotent)"
            ) from exc
    if len(acked) < len(report.replayed):
        raise ConsumerError(
            f"Kafka acknowledged {len(acked)} of {len(report.replayed)} replayed records; "
            "the acknowledged ones are recorded, run the same replay again for the rest"
        )
    return report


def _produce(settings: Settings, letters: list[DeadLetter], timeout_s: float = 60.0) -> list[DeadLetter]:
    """Produce each letter to the events topic; the ones Kafka acknowledged."""
    config = ProducerConfig.from_settings(settings, client_id="hookstream-dlq-replay")
    producer = Producer(config.as_librdkafka())
    acked: list[DeadLetter] = []

    def on_delivery(letter: DeadLetter):  # type: ignore[no-untyped-def]
        return lambda err, _msg: acked.append(letter) if err is None else None

    # A letter younger than REPLAY_MIN_AGE_MS is waited for, so that its replay is not stamped
    # ahead of the clock. The cap bounds the wait for an original stamped ahead of this host's
    # clock; a replay of that, or of a letter without the original's stamp, is stamped ahead.
    youngest = max((letter.original_timestamp_ms or 0 for letter in letters), default=0)
    time.sleep(min(max(youngest + REPLAY_MIN_AGE_MS - _now_ms(), 0), REPLAY_MIN_AGE_MS) / 1000)
    for letter in letters:
        producer.produce(
            settings.topic,
            value=letter.value,
            key=letter.key,
            headers=replay_headers(letter, settings.dlq_topic),  # type: ignore[arg-type]
            timestamp=replay_timestamp_ms(letter, _now_ms()),
            on_delivery=on_delivery(letter),
        )
        producer.poll(0)
    producer.flush(timeout_s)
    return acked
