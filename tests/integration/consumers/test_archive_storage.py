"""One contract for every archive storage: a local folder and a real S3-compatible bucket."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from consumers.archive.storage import Storage, open_storage
from hookstream.settings import Settings


@pytest.fixture
def storage(any_archive_url: str, tmp_path: Path) -> Storage:
    return open_storage(replace(Settings(), data_dir=tmp_path, archive_url=any_archive_url))


def test_an_object_reads_back_as_written_and_a_second_put_replaces_it(storage: Storage) -> None:
    storage.put("t/dt=2026-01-01/hour=00/t+0+1.avro", b"first")
    storage.put("t/dt=2026-01-01/hour=00/t+0+1.avro", b"second, longer")
    assert storage.get("t/dt=2026-01-01/hour=00/t+0+1.avro") == b"second, longer"


def test_keys_are_listed_under_a_folder_in_lexical_order(storage: Storage) -> None:
    for key in ("t/b/2.avro", "t/a/1.avro", "u/a/1.avro", "t/a/0.avro"):
        storage.put(key, key.encode())
    assert list(storage.keys("t/")) == ["t/a/0.avro", "t/a/1.avro", "t/b/2.avro"]
    assert list(storage.keys("none/")) == []


def test_a_missing_object_is_an_error(storage: Storage) -> None:
    storage.put("t/there.avro", b"x")
    with pytest.raises(FileNotFoundError):
        storage.get("t/missing.avro")
