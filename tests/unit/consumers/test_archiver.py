"""Archive files: readable as envelopes, rolled, repaired after a crash, never duplicated."""

import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import fastavro

from consumers.archiver import Archiver, topic_root, verify
from consumers.handler import Record
from hookstream.settings import Settings
from schemas.codec import CURRENT_VERSION, Envelope, schema_versions


def _record(partition: int, offset: int) -> Record:
    envelope = Envelope(
        event_id=f"evt-{partition}-{offset}",
        provider="fastio",
        event_type="file.created",
        workspace_id=f"ws-{partition}",
        payload=b'{"name": "a.pdf"}',
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return Record(envelope, "events", partition, offset, 0)


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return replace(Settings(data_dir=tmp_path, topic="events"), **kw)  # type: ignore[arg-type]


def _files(settings: Settings) -> list[Path]:
    return sorted(topic_root(settings).glob("*/*/*.avro"))


def test_files_hold_envelopes_any_envelope_reader_can_read(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    archiver = Archiver(settings)
    for offset in range(5):
        archiver.handle(_record(0, offset))
    archiver.flush()
    archiver.close()
    (path,) = _files(settings)
    assert path.parent.parent.parent == topic_root(settings)  # <topic>/<date>/<hour>/<file>
    with path.open("rb") as fo:
        records = list(fastavro.reader(fo, reader_schema=schema_versions()[CURRENT_VERSION]))
    assert [r["event_id"] for r in records] == [f"evt-0-{o}" for o in range(5)]
    assert records[0]["payload"] == b'{"name": "a.pdf"}'


def test_flush_makes_records_readable_before_the_file_is_closed(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    archiver = Archiver(settings)
    archiver.handle(_record(1, 0))
    archiver.flush()
    report = verify(topic_root(settings))
    assert report.partitions[1].records == 1 and report.ok
    archiver.close()


def test_files_roll_by_size_and_by_age(tmp_path: Path) -> None:
    by_size = _settings(tmp_path / "a", archive_max_bytes=1024)
    archiver = Archiver(by_size)
    for offset in range(60):
        archiver.handle(_record(0, offset))
        archiver.flush()
    archiver.close()
    assert len(_files(by_size)) > 1
    assert verify(topic_root(by_size)).partitions[0].records == 60

    by_age = _settings(tmp_path / "b", archive_max_age_s=0.1)
    archiver = Archiver(by_age)
    archiver.handle(_record(0, 0))
    time.sleep(0.15)
    archiver.flush()  # the runtime calls flush when idle too: an old file is closed
    archiver.handle(_record(0, 1))
    archiver.close()
    assert len(_files(by_age)) == 2


def test_reprocessing_after_a_crash_writes_no_duplicates(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = Archiver(settings)
    for offset in range(10):
        first.handle(_record(0, offset))
    first.flush()  # 0..9 durable; say offsets were committed only up to 5, then the process died
    first.close()
    again = Archiver(settings)
    for offset in range(5, 15):  # Kafka redelivers from the committed offset
        again.handle(_record(0, offset))
    again.flush()
    again.close()
    report = verify(topic_root(settings))
    assert report.ok
    assert report.partitions[0].records == 15 and report.partitions[0].duplicates == []


def test_a_file_cut_mid_block_is_truncated_to_its_whole_blocks(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    archiver = Archiver(settings)
    for offset in range(3):
        archiver.handle(_record(2, offset))
    archiver.flush()
    whole = _files(settings)[0].stat().st_size
    for offset in range(3, 6):
        archiver.handle(_record(2, offset))
    archiver.close()
    (path,) = _files(settings)
    with path.open("r+b") as fo:  # a crash in the middle of writing the second block
        fo.truncate(path.stat().st_size - 7)
    assert not verify(topic_root(settings)).ok

    restarted = Archiver(settings)  # repairs what no live writer holds
    assert path.stat().st_size == whole
    for offset in range(3, 6):
        restarted.handle(_record(2, offset))
    restarted.close()
    report = verify(topic_root(settings))
    assert report.ok and report.partitions[2].records == 6


def test_verify_reports_gaps_and_duplicates(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    for offsets in ([0, 1, 2, 5], [2]):  # two writers that did not know of each other
        archiver = Archiver(settings)
        archiver._archived.clear()  # forget what is on disk, as a buggy writer would
        archiver._recent_ids.clear()
        for offset in offsets:
            archiver.handle(_record(0, offset))
        archiver.close()
    report = verify(topic_root(settings))
    part = report.partitions[0]
    assert (part.records, part.gaps, part.duplicates) == (5, [(3, 4)], [2])
    assert not report.ok
    assert any("gaps: 3-4; duplicates: 2" in line for line in report.lines())
    assert report.duplicate_events == ["evt-0-2"]
    assert any("archived more than once: 1 (evt-0-2)" in line for line in report.lines())


def test_records_copied_from_kafka_bytes_read_back_as_encoding_them_would(tmp_path: Path) -> None:
    from schemas.codec import decode, encode

    by_hand = [_record(3, offset) for offset in range(4)]
    as_consumed = [replace(r, value=encode(r.envelope)) for r in by_hand]
    oldest = min(schema_versions())
    old_value = encode(replace(by_hand[0].envelope, event_id="evt-3-4"), version=oldest)
    older = replace(by_hand[0], envelope=decode(old_value), offset=4, value=old_value)
    read: list[list[dict[str, object]]] = []
    for name, records in (("encoded", by_hand), ("copied", [*as_consumed, older])):
        settings = _settings(tmp_path / name)
        archiver = Archiver(settings)
        for record in records:
            archiver.handle(record)
        archiver.close()
        (path,) = _files(settings)
        with path.open("rb") as fo:
            read.append(list(fastavro.reader(fo)))
    encoded, copied = read
    assert copied[:4] == encoded
    assert [(r["kafka_partition"], r["kafka_offset"]) for r in copied] == [(3, o) for o in range(5)]
    assert copied[4]["event_id"] == "evt-3-4" and copied[4]["schema_version"] == oldest


def _copy(record: Record, partition: int, offset: int) -> Record:
    """The same event held by Kafka a second time, at another offset."""
    return Record(record.envelope, "events", partition, offset, 0)


def test_a_second_copy_of_an_event_is_not_archived_again(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    archiver = Archiver(settings)
    first = _record(0, 0)
    archiver.handle(first)
    archiver.handle(_copy(first, 0, 1))
    archiver.flush()
    archiver.close()
    # A new member (after a restart) learns the archived event_ids from the files.
    restarted = Archiver(settings)
    restarted.handle(_copy(first, 0, 2))
    restarted.handle(_record(0, 3))
    restarted.close()
    report = verify(topic_root(settings))
    assert report.partitions[0].records == 2
    assert report.ok
