"""The archiver's uploads in a child process, to local files and to a real S3 server (s3proxy): the
object stored is the Avro container of the blocks sent, byte for byte; the storage's errors come
back with their own type (TransientError for an endpoint that does not answer, PermanentError for
refused credentials), anything else as ChildFailed; a child killed fails that upload with a
TransientError and the next upload starts another."""

from __future__ import annotations

import io
import os
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import psutil
import pytest

from consumers.archive import uploads as uploads_module
from consumers.archive.child import ChildFailed
from consumers.archive.container import OpenObject, datum
from consumers.archive.layout import archive_schema, object_key
from consumers.archive.storage import open_storage
from consumers.archive.uploads import UploadProcess
from consumers.errors import PermanentError, TransientError
from consumers.handler import Record
from hookstream.settings import Settings
from hookstream_dev.process import free_port_block
from schemas import codec
from tests.integration.consumers.consumer_helpers import envelope

T0 = int(datetime(2026, 1, 1, 10, 0, tzinfo=UTC).timestamp() * 1000)


@pytest.fixture
def archive_settings(any_archive_url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", topic="events", archive_url=any_archive_url)


@pytest.fixture
def uploads(archive_settings: Settings) -> Iterator[UploadProcess]:
    process = UploadProcess(archive_settings)
    try:
        yield process
    finally:
        process.close()


SCHEMA = fastavro.parse_schema(archive_schema())


def _object(first: int, count: int) -> OpenObject:
    """An object of `count` records of partition 0 from offset `first`, as the archiver builds one
    (with more than 1,000 records, more than one block: their order and counts matter)."""
    records = [
        Record(envelope(n), "events", 0, n, T0, codec.encode(envelope(n)))
        for n in range(first, first + count)
    ]
    obj = OpenObject(object_key("events", 0, first, T0), records[0])
    for record in records:
        obj.add(record.offset, datum(record, SCHEMA))
    return obj


def test_the_object_stored_is_the_container_of_the_blocks_sent(
    uploads: UploadProcess, archive_settings: Settings
) -> None:
    obj = _object(7, 2500)
    uploads.put(obj.key, obj.blocks())
    stored = open_storage(archive_settings).get(obj.key)
    reader = fastavro.block_reader(io.BytesIO(stored))
    assert [block.num_records for block in reader] == [1000, 1000, 500]
    records = list(fastavro.reader(io.BytesIO(stored)))
    assert [(r["kafka_partition"], r["kafka_offset"]) for r in records] == [(0, n) for n in range(7, 2507)]
    assert [r["event_id"] for r in records[:2]] == ["evt-7", "evt-8"]
    assert stored == obj.encode()  # what the member itself would have written
    assert uploads.name == open_storage(archive_settings).name
    child = psutil.Process(uploads.child.pid)
    assert child.ppid() == os.getpid() and "spawn_main" in " ".join(child.cmdline())


def test_an_upload_that_finds_the_child_killed_is_transient_and_the_next_starts_another(
    uploads: UploadProcess, archive_settings: Settings
) -> None:
    first, second = _object(0, 3), _object(3, 3)
    uploads.put(first.key, first.blocks())
    assert uploads.child.pid is not None
    killed = psutil.Process(uploads.child.pid)
    killed.kill()  # SIGKILL, as the OOM killer would
    with pytest.raises(TransientError, match="the archive-uploads process is gone"):
        uploads.put(second.key, second.blocks())
    uploads.put(second.key, second.blocks())
    assert uploads.child.pid not in (None, killed.pid)
    assert sorted(open_storage(archive_settings).keys("events/")) == sorted([first.key, second.key])


@pytest.mark.parametrize(
    ("variable", "value", "error", "words"),
    [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:{port}", TransientError, "S3 could not write"),  # no one there
        ("AWS_SECRET_ACCESS_KEY", "not-the-secret", PermanentError, "S3 refused to write"),
    ],
    ids=["endpoint-down-is-transient", "refused-credentials-are-permanent"],
)
def test_the_storages_errors_come_back_with_their_type(
    variable: str,
    value: str,
    error: type[Exception],
    words: str,
    s3_archive_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(variable, value.format(port=free_port_block(1)))  # read by the child's boto3
    uploads = UploadProcess(Settings(data_dir=tmp_path, topic="events", archive_url=s3_archive_url))
    try:
        obj = _object(0, 3)
        with pytest.raises(error, match=words):
            uploads.put(obj.key, obj.blocks())
    finally:
        uploads.close()


def test_an_upload_has_the_time_its_size_needs_on_a_slow_link_then_is_an_outage(
    s3_archive_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoint that takes the request and never answers: the upload waits for its deadline
    (more for a larger object), then fails as an outage and the child is replaced."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections complete in the backlog, and are never answered
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
    monkeypatch.setattr(uploads_module, "UPLOAD_DEADLINE_S", 0.5)
    monkeypatch.setattr(uploads_module, "SLOWEST_LINK_BYTES_PER_S", 1000)
    uploads = UploadProcess(Settings(data_dir=tmp_path, topic="events", archive_url=s3_archive_url))
    try:
        obj = _object(0, 3)
        deadline_s = 0.5 + sum(len(data) for _, data in obj.blocks()) / 1000
        assert deadline_s > 1.0
        started = time.monotonic()
        with pytest.raises(TransientError, match=f"did not answer within {deadline_s:g}s"):
            uploads.put(obj.key, obj.blocks())
        assert time.monotonic() - started >= deadline_s
    finally:
        uploads.close()
        silent.close()


def test_any_other_error_is_child_failed_and_the_child_serves_on(tmp_path: Path) -> None:
    """A local folder that cannot be made (a file is in the way) is no outage: the member stops."""
    (tmp_path / "file").write_text("")
    uploads = UploadProcess(
        Settings(data_dir=tmp_path, topic="events", archive_url=str(tmp_path / "file" / "a"))
    )
    try:
        obj = _object(0, 3)
        for _ in range(2):
            with pytest.raises(ChildFailed, match="NotADirectoryError"):
                uploads.put(obj.key, obj.blocks())
        assert uploads.child.pid is not None and psutil.Process(uploads.child.pid).is_running()
    finally:
        uploads.close()
