"""The archiver on local files: objects named from positions, rolled where a redo rolls them,
offsets vouched for only once uploaded, second copies dropped, verify's findings."""

import io
import time
from dataclasses import replace
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import fastavro
import pytest

from consumers.archive.layout import object_key, parse_key
from consumers.archive.local import LocalStorage
from consumers.archive.storage import open_storage
from consumers.archive.verify import verify
from consumers.archiver import MAX_UNCHECKED_BATCHES, Archiver
from consumers.errors import TransientError
from consumers.handler import Record
from hookstream.errors import ConfigError
from hookstream.settings import Settings
from schemas.codec import CURRENT_VERSION, Envelope, schema_versions

T0 = int(datetime(2026, 1, 1, 10, 0, tzinfo=UTC).timestamp() * 1000)


def _record(partition: int, offset: int, ts_ms: int | None = None) -> Record:
    envelope = Envelope(
        event_id=f"evt-{partition}-{offset}",
        provider="fastio",
        event_type="file.created",
        workspace_id=f"ws-{partition}",
        payload=b'{"name": "a.pdf"}',
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    return Record(envelope, "events", partition, offset, T0 if ts_ms is None else ts_ms)


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return replace(Settings(data_dir=tmp_path, topic="events"), **kw)  # type: ignore[arg-type]


def _keys(settings: Settings) -> list[str]:
    return list(open_storage(settings).keys("events/"))


def _finish_uploads(archiver: Archiver) -> None:
    """Return once every upload started has finished (its thread runs them in order)."""
    archiver._uploads.submit(lambda: None).result()


def _pre_commit(archiver: Archiver, processed: dict[int, int]) -> dict[int, int]:
    """pre_commit, then what the runtime does with its answer: store and commit those offsets,
    which Kafka confirms (`committed`)."""
    durable = archiver.pre_commit(processed)
    archiver.committed(durable)
    return durable


def _poll(archiver: Archiver, processed: dict[int, int]) -> dict[int, int]:
    """An idle poll of the runtime (no new records), once every upload started has finished."""
    _finish_uploads(archiver)
    archiver.start_batch([])
    return _pre_commit(archiver, processed)


def _hand_over(archiver: Archiver, records: list[Record]) -> dict[int, int]:
    """What the runtime does with a batch before pre_commit: a partition seen for the first time
    is assigned and starts at its first record (`committed`), then the batch is handed over."""
    processed: dict[int, int] = {}
    starts: dict[int, int] = {}
    for record in records:
        if record.partition not in archiver._owned:
            starts.setdefault(record.partition, record.offset)
        processed[record.partition] = record.offset + 1
    archiver.assigned(list(starts))
    archiver.committed(starts)
    archiver.start_batch(records)
    for record in records:
        archiver.handle(record)
    return processed


def _run(archiver: Archiver, records: list[Record]) -> dict[int, int]:
    """Hand `records` over as one batch, then poll twice with nothing new, as the runtime does:
    the batch is archived at the first poll (its event_id check ran meanwhile), and what rolled is
    uploaded then and seen stored at the second."""
    processed = _hand_over(archiver, records)
    _pre_commit(archiver, processed)
    _poll(archiver, processed)
    return _poll(archiver, processed)


def _drain(archiver: Archiver, processed: dict[int, int]) -> None:
    """Upload everything held: objects older (on the clock) than a tiny max age are cut, one
    upload per partition per call."""
    for _ in range(20):
        time.sleep(0.005)
        if _poll(archiver, processed) == processed:
            return
    raise AssertionError("the archiver kept records")


def test_objects_are_named_from_positions_and_read_as_envelopes(tmp_path: Path) -> None:
    settings = _settings(tmp_path, archive_max_bytes=1024)
    archiver = Archiver(settings)
    _run(archiver, [_record(0, offset) for offset in range(40)])
    archiver.close()
    keys = _keys(settings)
    assert keys[0] == "events/dt=2026-01-01/hour=10/events+0+00000000000000000000.avro"
    assert parse_key(keys[0]) is not None and parse_key(keys[0]).first_offset == 0  # type: ignore[union-attr]
    data = LocalStorage(tmp_path / "archive").get(keys[0])
    records: list[Any] = list(fastavro.reader(io.BytesIO(data), schema_versions()[CURRENT_VERSION]))
    assert records[0]["event_id"] == "evt-0-0" and records[0]["payload"] == b'{"name": "a.pdf"}'


def test_offsets_are_vouched_for_only_up_to_the_first_record_not_uploaded(tmp_path: Path) -> None:
    settings = _settings(tmp_path, archive_max_bytes=1024, archive_max_age_s=3600)
    archiver = Archiver(settings)
    assert _run(archiver, [_record(1, offset) for offset in range(5)]) == {1: 0}  # all held, open
    assert _keys(settings) == []
    durable = _run(archiver, [_record(1, offset) for offset in range(5, 40)])
    (first,) = _keys(settings)  # the first object rolled by size and was uploaded
    records_in_first = verify(open_storage(settings), "events").partitions[1].records
    assert durable == {1: records_in_first}  # the next object starts right after it
    assert parse_key(first).first_offset == 0  # type: ignore[union-attr]
    archiver.close()


def test_a_partition_uploads_one_object_at_a_time_in_order(tmp_path: Path) -> None:
    settings = _settings(tmp_path, archive_max_bytes=1024, archive_max_age_s=3600)
    archiver = Archiver(settings)
    _run(archiver, [_record(2, offset) for offset in range(200)])  # several objects rolled at once
    stored = [len(_keys(settings))]
    for _ in range(16):
        _poll(archiver, {2: 200})
        _finish_uploads(archiver)
        stored.append(len(_keys(settings)))
    assert stored[0] == 1 and stored[-1] >= 4
    assert all(later - earlier <= 1 for earlier, later in pairwise(stored))
    archiver.close()


def test_a_partitions_next_object_waits_for_the_commit_of_everything_before_it(tmp_path: Path) -> None:
    """At most one object per partition is stored and not committed, so a redo from the committed
    offset lands on its key even where it rolls elsewhere (a cut by the clock)."""
    settings = _settings(tmp_path, archive_max_bytes=1024, archive_max_age_s=3600)
    archiver = Archiver(settings)
    _hand_over(archiver, [_record(2, offset) for offset in range(200)])
    for _ in range(4):  # polls whose answers are never committed
        _finish_uploads(archiver)
        archiver.start_batch([])
        durable = archiver.pre_commit({2: 200})
    _finish_uploads(archiver)
    assert len(_keys(settings)) == 1 and durable[2] > 0  # the first object, stored, not committed
    archiver.committed(durable)  # Kafka confirms: the next one may go
    _poll(archiver, {2: 200})
    _finish_uploads(archiver)
    assert len(_keys(settings)) == 2
    archiver.close()


def test_a_late_confirmation_for_a_partition_that_left_is_ignored(tmp_path: Path) -> None:
    """A commit confirmed after its partition left (and came back, consumption restarting later)
    neither moves the barrier back nor forward."""
    settings = _settings(tmp_path, archive_max_bytes=1024, archive_max_age_s=3600)
    archiver = Archiver(settings)
    _run(archiver, [_record(1, offset) for offset in range(10)])
    archiver.revoked([1])
    archiver.committed({1: 5})  # the async commit sent before the revoke, confirmed after it
    _run(archiver, [_record(1, offset) for offset in range(300, 400)])  # back, another member was here
    assert [parse_key(k).first_offset for k in _keys(settings)][:1] == [300]  # type: ignore[union-attr]
    archiver.close()


def test_roll_points_depend_on_the_records_only(tmp_path: Path) -> None:
    """Size, record time and the hour: a redo from the same offset writes the same keys and bytes."""
    hour_edge = T0 + 3600_000 - 5
    records = [_record(0, o, T0 + o * 400) for o in range(30)]  # 0.4 s apart: ages out every 3 s
    records += [_record(0, o, hour_edge + (o - 30)) for o in range(30, 40)]  # crosses 11:00 at 35
    objects: list[dict[str, bytes]] = []
    for name in ("first", "redo"):
        settings = _settings(tmp_path / name, archive_max_bytes=2048, archive_max_age_s=3)
        archiver = Archiver(settings)
        for record in records:
            _run(archiver, [record])
        for _ in range(12):
            durable = _poll(archiver, {0: 40})
        assert durable == {0: 35}  # the object still open began with the hour
        archiver.close()
        storage = open_storage(settings)
        objects.append({key: storage.get(key) for key in storage.keys("events/")})
    first, redo = objects
    assert first == redo
    assert len(first) >= 4 and all("hour=10" in key for key in first)
    report = verify(open_storage(_settings(tmp_path / "first")), "events")
    assert report.ok and report.partitions[0].records == 35


def test_a_quiet_partition_is_cut_when_its_object_is_old_on_the_clock(tmp_path: Path) -> None:
    settings = _settings(tmp_path, archive_max_age_s=0.1)
    archiver = Archiver(settings)
    assert _run(archiver, [_record(3, 7)]) == {3: 7}
    time.sleep(0.15)
    assert _poll(archiver, {3: 8}) == {3: 7}  # cut, and uploading
    assert _poll(archiver, {3: 8}) == {3: 8}
    assert _keys(settings) == [object_key("events", 3, 7, T0)]
    archiver.close()


def test_a_second_copy_is_dropped_but_a_redo_of_the_archived_copy_is_not(tmp_path: Path) -> None:
    settings = _settings(tmp_path, archive_max_age_s=0.001)
    first = _record(0, 0)
    copy = Record(first.envelope, "events", 0, 1, T0)
    archiver = Archiver(settings)
    _run(archiver, [first, copy])
    _drain(archiver, {0: 2})
    archiver.close()
    redo = Archiver(settings)  # offsets were not committed: Kafka delivers both again
    redo.assigned([0])
    redo.committed({0: 0})
    for record in (first, copy):
        redo.handle(record)  # without start_batch: checked when pre_commit archives them
    _drain(redo, {0: 2})
    redo.close()
    report = verify(open_storage(settings), "events")
    assert report.partitions[0].records == 1 and report.ok


def test_a_record_handed_over_beyond_what_start_batch_checked_is_checked_when_archived(
    tmp_path: Path,
) -> None:
    """The runtime never hands over more than start_batch saw; were it to, the extra record must
    not be archived unchecked: here it is a second copy, and it is dropped."""
    settings = _settings(tmp_path, archive_max_age_s=0.001)
    first, fresh = _record(0, 0), _record(0, 1)
    copy = Record(first.envelope, "events", 0, 2, T0)
    archiver = Archiver(settings)
    _run(archiver, [first])
    archiver.start_batch([fresh])
    archiver.handle(fresh)
    archiver.handle(copy)
    _drain(archiver, {0: 3})
    archiver.close()
    report = verify(open_storage(settings), "events")
    assert (report.partitions[0].records, report.partitions[0].last) == (2, 1)  # 0:2 left out


def test_while_the_store_is_unreachable_batches_wait_then_are_archived_once(tmp_path: Path) -> None:
    """No record is archived without its event_id check: its batch waits, offsets held back, and
    the member stops taking records once too many wait; once the store answers, all go in once."""
    blocker = tmp_path / "blocker"
    blocker.write_text("")  # the store's directory cannot be created while this is a file
    settings = _settings(
        tmp_path, archive_max_age_s=0.001, archive_url=str(tmp_path / "archive"), data_dir=blocker / "data"
    )
    archiver = Archiver(settings)
    offsets = iter(range(100))
    with pytest.raises(TransientError, match="wait for their event_id check"):
        for _ in range(MAX_UNCHECKED_BATCHES + 1):
            batch = [_record(0, next(offsets)) for _ in range(3)]
            assert _run(archiver, batch) == {0: 0}
    assert _keys(settings) == []
    blocker.unlink()  # the store makes its directory at its next try, which may already be running
    processed = next(offsets)
    _drain(archiver, {0: processed})
    archiver.close()
    report = verify(open_storage(settings), "events")
    assert report.ok and report.partitions[0].records == processed


def test_revoked_partitions_are_abandoned(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    archiver = Archiver(settings)
    assert _run(archiver, [_record(0, 0), _record(1, 0)]) == {0: 0, 1: 0}
    archiver.revoked([0])
    assert archiver.pre_commit({1: 1}) == {1: 0}
    archiver.close()


def test_records_copied_from_kafka_bytes_read_back_as_encoding_them_would(tmp_path: Path) -> None:
    from schemas.codec import decode, encode

    by_hand = [_record(3, offset) for offset in range(4)]
    as_consumed = [replace(r, value=encode(r.envelope)) for r in by_hand]
    oldest = min(schema_versions())
    old_value = encode(replace(by_hand[0].envelope, event_id="evt-3-4"), version=oldest)
    older = replace(by_hand[0], envelope=decode(old_value), offset=4, value=old_value)
    read: list[list[dict[str, object]]] = []
    for name, records in (("encoded", by_hand), ("copied", [*as_consumed, older])):
        settings = _settings(tmp_path / name, archive_max_age_s=0.001)
        archiver = Archiver(settings)
        _run(archiver, records)
        _drain(archiver, {3: 5})
        archiver.close()
        (key,) = _keys(settings)
        with (tmp_path / name / "archive" / key).open("rb") as fo:
            read.append(list(fastavro.reader(fo)))  # type: ignore[arg-type]
    encoded, copied = read
    assert copied[:4] == encoded
    assert [(r["kafka_partition"], r["kafka_offset"]) for r in copied] == [(3, o) for o in range(5)]
    assert copied[4]["event_id"] == "evt-3-4" and copied[4]["schema_version"] == oldest


def test_verify_reports_gaps_duplicates_and_broken_objects(tmp_path: Path) -> None:
    settings = _settings(tmp_path, archive_max_age_s=0.001)
    settings = replace(settings, archive_url=str(tmp_path / "archive"))
    storage = open_storage(settings)
    for data_dir, offsets in (("a", [0, 1, 2, 5]), ("b", [2])):  # two writers that never met
        writer = Archiver(replace(settings, data_dir=tmp_path / data_dir))
        _run(writer, [_record(0, o) for o in offsets])
        _drain(writer, {0: 6})
        writer.close()
    report = verify(storage, "events")
    part = report.partitions[0]
    assert (part.records, part.gaps, part.duplicates) == (5, [(3, 4)], [2])
    assert not report.ok
    assert any("gaps: 3-4; duplicates: 2" in line for line in report.lines())
    assert report.duplicate_events == ["evt-0-2"]
    storage.put(object_key("events", 1, 0, T0), b"Obj\x01 cut short")
    report = verify(storage, "events")
    assert len(report.broken) == 1 and "events+1+" in report.broken[0]


def test_the_archive_url_picks_the_storage(tmp_path: Path) -> None:
    assert open_storage(_settings(tmp_path)).name == str(tmp_path / "archive")
    assert open_storage(_settings(tmp_path, archive_url=str(tmp_path / "x"))).name == str(tmp_path / "x")
    with pytest.raises(ConfigError, match="use s3://bucket/prefix"):
        open_storage(_settings(tmp_path, archive_url="gs://bucket/x"))
    with pytest.raises(ConfigError, match="names no bucket"):
        open_storage(_settings(tmp_path, archive_url="s3:///x"))
