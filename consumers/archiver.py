"""The archiver group: every event, as its envelope record, in Avro object container files.

Files live under `<data_dir>/archive/<topic>/<YYYY-MM-DD>/<HH>/` (UTC, when the file was
opened) and are rolled by size, by age and at the hour. Each record is the newest envelope
schema plus `kafka_partition` and `kafka_offset`, so any Avro reader with the envelope schema
reads the files, and `hookstream archive verify` can find gaps and duplicates.

Durability: `flush` (before the runtime stores offsets) writes the block and fsyncs the file,
so a committed offset always has its record on disk. No duplicates after a crash: records
written after the last commit are processed again, so at start-up and on every assignment the
archiver reads what the files already hold (only files that changed since it last looked) and
skips any (partition, offset) at or below the highest one archived. Kafka may also hold one event
twice at two offsets (a 503'd record that landed late, then the sender's retry; copies accepted
by two producer workers): the archiver also skips an event_id it archived within the senders'
retry horizon (`EVENT_ID_WINDOW_S`). A file cut short by a crash mid-write is truncated to its
last whole block, but only when no live writer holds its lock.
"""

from __future__ import annotations

import fcntl
import io
import itertools
import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import IO, Any

import fastavro
import fastavro.write

from consumers.handler import Handler, Record
from hookstream.settings import Settings
from schemas.codec import CURRENT_VERSION, MAGIC

# Fast.io retries a delivery for up to 24 h: a copy of an event arrives within that horizon.
EVENT_ID_WINDOW_S = 26 * 3600

_POSITION_FIELDS = [
    {"name": "kafka_partition", "type": "int", "default": -1, "doc": "Partition of the events topic."},
    {"name": "kafka_offset", "type": "long", "default": -1, "doc": "Offset in that partition."},
]


def archive_schema() -> dict[str, Any]:
    """The newest envelope schema with the record's Kafka position appended."""
    text = resources.files("schemas").joinpath(f"envelope.v{CURRENT_VERSION}.avsc").read_text()
    schema: dict[str, Any] = json.loads(text)
    schema["fields"] = [*schema["fields"], *_POSITION_FIELDS]
    return schema


# Reading only the event_id and position skips decoding everything else.
_POSITION_READER = {
    "type": "record",
    "name": "Envelope",
    "namespace": "io.hookstream",
    "fields": [{"name": "event_id", "type": "string"}, *_POSITION_FIELDS],
}


def topic_root(settings: Settings, topic: str | None = None) -> Path:
    return settings.data_dir / "archive" / (topic or settings.topic)


def _archive_files(root: Path) -> list[Path]:
    return sorted(root.glob("*/*/*.avro"))


def _try_lock(fo: IO[bytes]) -> bool:
    """Whether no live writer holds this file (writers keep an exclusive lock while open)."""
    try:
        fcntl.flock(fo.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@dataclass
class FileScan:
    """What one archive file holds: positions of its whole blocks, and where they end."""

    positions: list[tuple[int, int]] = field(default_factory=list)
    event_ids: list[str] = field(default_factory=list)
    whole_bytes: int = 0  # 0: not even the header is whole
    size: int = 0
    error: str | None = None


def scan_file(path: Path, reader_schema: dict[str, Any] | None = _POSITION_READER) -> FileScan:
    scan = FileScan()
    with path.open("rb") as fo:
        scan.size = os.fstat(fo.fileno()).st_size
        try:
            blocks = fastavro.block_reader(fo, reader_schema)
            scan.whole_bytes = fo.tell()
            for block in blocks:
                records: Iterator[dict[str, Any]] = iter(block)  # type: ignore[arg-type]
                for r in records:
                    scan.positions.append((r["kafka_partition"], r["kafka_offset"]))
                    scan.event_ids.append(r["event_id"])
                scan.whole_bytes = fo.tell()
        except Exception as exc:  # fastavro raises many types for a cut-short file
            scan.error = f"{type(exc).__name__}: {exc}"
    return scan


def repair(path: Path, scan: FileScan) -> bool:
    """Cut a dead writer's file back to its last whole block; False if a live writer holds it."""
    with path.open("r+b") as fo:
        if not _try_lock(fo):
            return False
        if scan.whole_bytes == 0:
            path.unlink()  # not even a header: no record was ever durable in it
        else:
            fo.truncate(scan.whole_bytes)
            os.fsync(fo.fileno())
    return True


# zlib's fastest level: a batch's block compresses in a fifth of the default level's time,
# for files about a sixth larger.
_DEFLATE_LEVEL = 1


@dataclass(frozen=True)
class _Block:
    num_records: int
    bytes_: io.BytesIO


def _long(n: int) -> bytes:
    """Avro's encoding of an int or long: zigzag, then 7 bits a byte, low bits first."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


class _OpenFile:
    """The one file being written, exclusively locked for as long as it is open."""

    def __init__(self, root: Path, schema: Any, codec: str) -> None:
        # Records staged since the last sync: written as one Avro block by the next sync.
        self._block = io.BytesIO()
        self._count = 0
        now = datetime.now(UTC)
        self.hour = now.strftime("%Y-%m-%d/%H")
        directory = root / self.hour
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}.avro"
        self.opened = time.monotonic()
        self._fo = self.path.open("xb")
        fcntl.flock(self._fo.fileno(), fcntl.LOCK_EX)
        self._writer = fastavro.write.Writer(self._fo, schema, codec=codec, compression_level=_DEFLATE_LEVEL)
        self.sync()
        # The new name must be durable too, or an fsynced file could vanish with its directory entry.
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def write(self, datum: bytes) -> None:
        """Stage one record, already Avro-encoded with the archive schema."""
        self._block.write(datum)
        self._count += 1

    def sync(self) -> None:
        if self._count:
            # fastavro's write_block takes a block as block_reader yields it: a count and the
            # encoded records (it compresses them with the file's codec).
            self._writer.write_block(_Block(self._count, self._block))
            self._block = io.BytesIO()
            self._count = 0
        self._writer.flush()
        self._fo.flush()
        os.fsync(self._fo.fileno())

    def size(self) -> int:
        return self._fo.tell()

    def close(self) -> None:
        self.sync()
        self._fo.close()  # also releases the lock


class Archiver(Handler):
    def __init__(self, settings: Settings, codec: str = "deflate") -> None:
        self._root = topic_root(settings)
        self._max_bytes = settings.archive_max_bytes
        self._max_age_s = settings.archive_max_age_s
        self._schema = fastavro.parse_schema(archive_schema())
        self._codec = codec
        self._file: _OpenFile | None = None
        # Highest offset on disk per partition, and the size of each file when last read.
        self._archived: dict[int, int] = {}
        self._seen_size: dict[Path, int] = {}
        # event_id -> when it was archived (epoch seconds), for the last EVENT_ID_WINDOW_S.
        self._recent_ids: dict[str, float] = {}
        self._refresh()

    def _refresh(self) -> None:
        for path in _archive_files(self._root):
            if self._file is not None and path == self._file.path:
                continue
            size = path.stat().st_size
            if self._seen_size.get(path) == size:
                continue
            scan = scan_file(path)
            for partition, offset in scan.positions:
                if offset > self._archived.get(partition, -1):
                    self._archived[partition] = offset
            written = path.stat().st_mtime
            if written >= time.time() - EVENT_ID_WINDOW_S:
                self._recent_ids.update(dict.fromkeys(scan.event_ids, written))
            if scan.error is not None and repair(path, scan):
                size = scan.whole_bytes
            self._seen_size[path] = size

    def assigned(self, partitions: list[int]) -> None:
        # Another member (gone now) may have archived these partitions further than we know.
        self._refresh()

    def handle(self, record: Record) -> None:
        if record.offset <= self._archived.get(record.partition, -1):
            return  # on disk already: written before a crash, processed again after it
        event_id = record.envelope.event_id
        if event_id in self._recent_ids:
            return  # another copy of an event already archived
        if self._file is None:
            self._file = _OpenFile(self._root, self._schema, self._codec)
        self._file.write(self._datum(record))
        self._archived[record.partition] = record.offset
        self._recent_ids[event_id] = time.time()

    def _datum(self, record: Record) -> bytes:
        """The archive record's Avro bytes. An envelope written with the newest schema is, byte
        for byte, the archive record's leading fields: the position is appended to it as it came
        from Kafka, with no re-encoding. Older versions are encoded from the decoded envelope."""
        value = record.value
        position = _long(record.partition) + _long(record.offset)
        if len(value) > 2 and value[0] == MAGIC and value[1] == CURRENT_VERSION:  # not a registry id
            return value[2:] + position
        out = io.BytesIO()
        fastavro.schemaless_writer(
            out,
            self._schema,
            {**record.envelope.__dict__, "kafka_partition": record.partition, "kafka_offset": record.offset},
        )
        return out.getvalue()

    def flush(self) -> None:
        if self._file is None:
            return
        self._file.sync()
        too_old = time.monotonic() - self._file.opened >= self._max_age_s
        hour_over = datetime.now(UTC).strftime("%Y-%m-%d/%H") != self._file.hour
        if too_old or hour_over or self._file.size() >= self._max_bytes:
            self._roll()

    def _roll(self) -> None:
        assert self._file is not None
        self._file.close()
        self._seen_size[self._file.path] = self._file.path.stat().st_size
        self._file = None
        cutoff = time.time() - EVENT_ID_WINDOW_S
        self._recent_ids = {k: t for k, t in self._recent_ids.items() if t >= cutoff}

    def close(self) -> None:
        if self._file is not None:
            self._roll()


# -- verify ---------------------------------------------------------------------------------


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
    files: int = 0
    partitions: dict[int, PartitionReport] = field(default_factory=dict)
    broken_files: list[str] = field(default_factory=list)
    being_written: list[str] = field(default_factory=list)
    duplicate_events: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.broken_files
            and not self.duplicate_events
            and not any(p.duplicates for p in self.partitions.values())
        )

    def lines(self) -> Iterator[str]:
        total = sum(p.records for p in self.partitions.values())
        yield f"{self.files} files, {total} records"
        for partition in sorted(self.partitions):
            yield self.partitions[partition].describe(partition)
        if self.duplicate_events:
            shown = ", ".join(self.duplicate_events[:10])
            yield f"event_ids archived more than once: {len(self.duplicate_events)} ({shown})"
        for note in self.broken_files:
            yield f"BROKEN {note}"
        for note in self.being_written:
            yield f"still being written (not checked past its last whole block): {note}"


def verify(root: Path) -> VerifyReport:
    """Read every record of every file under `root`; count per partition, find gaps and duplicates.

    Gaps are expected where records went to the DLQ (or were replays meant for another group);
    duplicates and unreadable files are not.
    """
    report = VerifyReport()
    counts: dict[int, Counter[int]] = {}
    events: Counter[str] = Counter()
    for path in _archive_files(root):
        report.files += 1
        scan = scan_file(path, reader_schema=None)  # full records: proves every byte reads
        for partition, offset in scan.positions:
            counts.setdefault(partition, Counter())[offset] += 1
        events.update(scan.event_ids)
        if scan.error is not None:
            with path.open("rb") as fo:
                live = not _try_lock(fo)
            (report.being_written if live else report.broken_files).append(f"{path}: {scan.error}")
    for partition, offsets in counts.items():
        ordered = sorted(offsets)
        part = PartitionReport(records=sum(offsets.values()), first=ordered[0], last=ordered[-1])
        part.duplicates = [o for o in ordered if offsets[o] > 1]
        part.gaps = [(a + 1, b - 1) for a, b in itertools.pairwise(ordered) if b - a > 1]
        report.partitions[partition] = part
    report.duplicate_events = [event_id for event_id, n in events.items() if n > 1]
    return report
