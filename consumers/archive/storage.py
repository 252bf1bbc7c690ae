"""Where archive objects go: `HOOKSTREAM_ARCHIVE_URL` picks the backend.

- unset: files under `<data_dir>/archive/`;
- a path (or `file://path`): files under that folder;
- `s3://bucket/prefix`: objects in that bucket, through boto3's standard configuration.

Every backend writes an object whole or not at all, and writing a key again replaces it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from hookstream.errors import ConfigError
from hookstream.settings import Settings


class Storage(Protocol):
    name: str  # where the objects are, without credentials (logs and messages)

    def put(self, key: str, data: bytes) -> None:
        """Store `data` at `key` (relative to the archive's root), whole, replacing any object there."""

    def get(self, key: str) -> bytes:
        """The object at `key`; FileNotFoundError when there is none."""

    def keys(self, under: str = "") -> Iterator[str]:
        """Every key below `under` (a relative folder such as "<topic>/"), in lexical order."""


def open_storage(settings: Settings) -> Storage:
    url = settings.archive_url
    if url is None:
        from consumers.archive.local import LocalStorage

        return LocalStorage(settings.data_dir / "archive")
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigError(f"HOOKSTREAM_ARCHIVE_URL={url!r} names no bucket; use s3://bucket/prefix")
        from consumers.archive.s3 import S3Storage

        return S3Storage(parsed.netloc, parsed.path.strip("/"))
    if parsed.scheme in ("", "file"):
        from consumers.archive.local import LocalStorage

        return LocalStorage(Path(parsed.path))
    raise ConfigError(
        f"HOOKSTREAM_ARCHIVE_URL={url!r}: use s3://bucket/prefix, or a local folder (or leave it unset)"
    )
