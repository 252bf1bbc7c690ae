"""The indexer handler as the runtime drives it (start_batch, handle, flush), on both backends:
a record that cannot be indexed fails alone; a batch the index cannot take now refuses nothing
and is written by flush once the index is back; records start_batch never saw still count."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from consumers.errors import PermanentError, TransientError
from consumers.handler import Record
from consumers.index import open_index
from consumers.index.sqlite import index_path
from consumers.indexer import Indexer
from hookstream.settings import Settings
from schemas import codec
from tests.integration.consumers.index.index_helpers import BACKENDS


def _record(n: int, payload: bytes | None = None) -> Record:
    body = payload or json.dumps({"object_id": f"obj-{n}", "resource": {"name": f"plan-{n}.pdf"}}).encode()
    envelope = codec.Envelope(
        event_id=f"evt-{n}",
        provider="fastio",
        event_type="workspace_storage_file_added",
        workspace_id="ws-1",
        payload=body,
        received_at=codec.utc_now(),
        object_id=None,
    )
    return Record(envelope, "events", 0, n, 0)


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "sqlite":
        return replace(Settings(), data_dir=tmp_path / "data")
    found: Settings = request.getfixturevalue("opensearch_settings")
    return replace(found, data_dir=tmp_path / "data")


def _found(settings: Settings) -> list[str]:
    index = open_index(settings, readonly=True)
    try:
        if settings.opensearch_url:
            from consumers.index.opensearch import client

            with client(settings) as admin:
                admin.indices.refresh(index=settings.opensearch_index)
        return sorted(hit.object_id for hit in index.search("plan", limit=100))
    finally:
        index.close()


def test_a_record_that_cannot_be_indexed_fails_alone(settings: Settings) -> None:
    indexer = Indexer(settings)
    batch = [
        _record(1),
        _record(2, b"<not json/>"),
        _record(3, json.dumps({"name": "no id"}).encode()),
        _record(4),
    ]
    indexer.start_batch(batch)
    outcomes = []
    for record in batch:
        try:
            indexer.handle(record)
            outcomes.append("ok")
        except PermanentError:
            outcomes.append("dlq")
    indexer.flush()
    indexer.close()
    assert outcomes == ["ok", "dlq", "dlq", "ok"]
    assert _found(settings) == ["obj-1", "obj-4"]


def test_records_handled_without_start_batch_are_written_by_flush(settings: Settings) -> None:
    indexer = Indexer(settings)
    for n in range(3):
        indexer.handle(_record(n))
    indexer.flush()
    indexer.close()
    assert _found(settings) == ["obj-0", "obj-1", "obj-2"]


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[tuple[Settings, sqlite3.Connection]]:
    """SQLite settings, and another writer holding the index's write lock until it commits."""
    settings = replace(Settings(), data_dir=tmp_path / "data")
    Indexer(settings).close()  # the schema exists
    other = sqlite3.connect(index_path(settings), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    yield settings, other
    other.close()


def test_a_batch_the_index_cannot_take_now_is_written_by_flush_later(
    locked: tuple[Settings, sqlite3.Connection],
) -> None:
    settings, other = locked
    indexer = Indexer(settings)
    batch = [_record(n) for n in range(5)]
    indexer.start_batch(batch)  # busy: nothing refused, nothing written
    for record in batch:
        indexer.handle(record)
    with pytest.raises(TransientError):
        indexer.flush()  # the runtime retries it with backoff
    other.execute("COMMIT")
    indexer.flush()
    indexer.close()
    assert _found(settings) == [f"obj-{n}" for n in range(5)]
