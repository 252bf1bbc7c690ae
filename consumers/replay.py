"""DLQ replay: send dead letters back through the events topic, to the group that failed them.

A replayed record is the original key, value and headers, produced to the events topic with
two more headers: `hookstream.replay.group` (the one group that should process it; every
other group's runtime skips it and moves on) and `hookstream.replay.source` (the DLQ record
it came from). Going through the events topic keeps replay free of a second consume path:
the group processes it like any record, with retries, DLQ and idempotent effects.

"Never twice by accident": a ledger (SQLite, `<data_dir>/dlq-replays.sqlite3`) holds every
DLQ position already replayed. A replay takes the ledger's write lock for its whole run (two
replays at once serialize), skips positions in it, waits for Kafka to acknowledge what it
produced, then records those positions. A crash between the acknowledgement and the record
could replay a record again on the next run; the groups' effects are idempotent by event_id,
so even that repeats no effect.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Producer

from consumers.dlq import REPLAY_GROUP, REPLAY_SOURCE, DeadLetter, original_headers, read_dead_letters
from consumers.errors import ConsumerError
from hookstream.kafka import ProducerConfig
from hookstream.settings import Settings


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """`--since`: an ISO 8601 time (UTC when no zone is given) or an age like 30m, 2h, 1d."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return (now or datetime.now(UTC)) - timedelta(**{unit: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ConsumerError(
            f"--since {text!r} is neither an ISO time (2026-05-01T12:00:00Z) nor an age (30m, 2h, 1d)"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
    """DLQ positions already replayed, durable across processes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS replayed (dlq_topic TEXT NOT NULL, partition INTEGER NOT NULL,"
            " dlq_offset INTEGER NOT NULL, dlq_group TEXT NOT NULL, event_id TEXT,"
            " replayed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ')),"
            " PRIMARY KEY (dlq_topic, partition, dlq_offset))"
        )

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the ledger's write lock: one replay at a time; commit what it recorded."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def replayed(self, dlq_topic: str) -> set[tuple[int, int]]:
        sql = "SELECT partition, dlq_offset FROM replayed WHERE dlq_topic = ?"
        rows = self._db.execute(sql, (dlq_topic,))
        return {(p, o) for p, o in rows}

    def record(self, dlq_topic: str, letters: list[DeadLetter]) -> None:
        self._db.executemany(
            "INSERT OR IGNORE INTO replayed (dlq_topic, partition, dlq_offset, dlq_group, event_id)"
            " VALUES (?, ?, ?, ?, ?)",
            [(dlq_topic, d.partition, d.offset, d.group, d.event_id) for d in letters],
        )

    def close(self) -> None:
        self._db.close()


def ledger_path(settings: Settings) -> Path:
    return settings.data_dir / "dlq-replays.sqlite3"


def replay_headers(letter: DeadLetter, dlq_topic: str) -> list[tuple[str, bytes]]:
    assert letter.group is not None
    return [
        *original_headers(letter.headers),
        (REPLAY_GROUP, letter.group.encode()),
        (REPLAY_SOURCE, f"{dlq_topic}:{letter.partition}:{letter.offset}".encode()),
    ]


@dataclass
class ReplayReport:
    replayed: list[DeadLetter] = field(default_factory=list)
    already: list[DeadLetter] = field(default_factory=list)
    dry_run: bool = False


def replay(settings: Settings, selection: ReplayFilter, dry_run: bool = False) -> ReplayReport:
    """Replay the DLQ records `selection` picks that were never replayed before."""
    ledger = ReplayLedger(ledger_path(settings))
    report = ReplayReport(dry_run=dry_run)
    try:
        with ledger.locked():
            done = ledger.replayed(settings.dlq_topic)
            for letter in read_dead_letters(settings):
                if selection.matches(letter):
                    known = (letter.partition, letter.offset) in done
                    (report.already if known else report.replayed).append(letter)
            if dry_run or not report.replayed:
                return report
            acked = _produce(settings, report.replayed)
            ledger.record(settings.dlq_topic, acked)
    finally:
        ledger.close()
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

    for letter in letters:
        producer.produce(
            settings.topic,
            value=letter.value,
            key=letter.key,
            headers=replay_headers(letter, settings.dlq_topic),  # type: ignore[arg-type]
            on_delivery=on_delivery(letter),
        )
        producer.poll(0)
    producer.flush(timeout_s)
    return acked
