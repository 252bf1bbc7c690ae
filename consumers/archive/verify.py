"""`hookstream archive verify`: read every object of a topic's archive back, record by record."""

from __future__ import annotations

import io
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import fastavro

from consumers.archive.layout import parse_key
from consumers.archive.storage import Storage


@dataclass
class PartitionReport:
    records: int = 0
    first: int = -1
    last: int = -1
    gaps: list[tuple[int, int]] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)

    def describe(self, partition: int) -> str:
        gaps = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in self.gaps) or "none"
        dups = ", ".join(map(str, self.duplicates)) or "none"
        return (
            f"partition {partition}: {self.records} records, offsets {self.first}..{self.last}; "
            f"gaps: {gaps}; duplicates: {dups}"
        )


@dataclass
class VerifyReport:
    objects: int = 0
    partitions: dict[int, PartitionReport] = field(default_factory=dict)
    broken: list[str] = field(default_factory=list)
    duplicate_events: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.broken
            and not self.duplicate_events
            and not any(p.duplicates for p in self.partitions.values())
        )

    def lines(self) -> Iterator[str]:
        total = sum(p.records for p in self.partitions.values())
        yield f"{self.objects} objects, {total} records"
        for partition in sorted(self.partitions):
            yield self.partitions[partition].describe(partition)
        if self.duplicate_events:
            shown = ", ".join(self.duplicate_events[:10])
            yield f"event_ids archived more than once: {len(self.duplicate_events)} ({shown})"
        for note in self.broken:
            yield f"BROKEN {note}"


def _read(data: bytes) -> list[dict[str, Any]]:
    # Every field of every record: proves each byte reads.
    return [record for record in fastavro.reader(io.BytesIO(data)) if isinstance(record, dict)]


def verify(storage: Storage, topic: str) -> VerifyReport:
    """Count per partition, find gaps and duplicates, in every object of `topic`'s archive.

    Gaps are expected where records went to the DLQ, were replays meant for another group, or
    were second copies of an event; duplicates and unreadable objects are not.
    """
    report = VerifyReport()
    counts: dict[int, Counter[int]] = {}
    events: Counter[str] = Counter()
    for key in storage.keys(f"{topic}/"):
        report.objects += 1
        where = parse_key(key)
        try:
            records = _read(storage.get(key))
        except Exception as exc:  # fastavro raises many types for a damaged object
            report.broken.append(f"{storage.name}{key}: {type(exc).__name__}: {exc}")
            continue
        if where is None or not records or records[0]["kafka_offset"] != where.first_offset:
            report.broken.append(f"{storage.name}{key}: its name does not match its first record")
        for r in records:
            counts.setdefault(r["kafka_partition"], Counter())[r["kafka_offset"]] += 1
            events[r["event_id"]] += 1
    for partition, offsets in counts.items():
        ordered = sorted(offsets)
        part = PartitionReport(records=sum(offsets.values()), first=ordered[0], last=ordered[-1])
        part.duplicates = [o for o in ordered if offsets[o] > 1]
        part.gaps = [(a + 1, b - 1) for a, b in itertools.pairwise(ordered) if b - a > 1]
        report.partitions[partition] = part
    report.duplicate_events = [event_id for event_id, n in events.items() if n > 1]
    return report
