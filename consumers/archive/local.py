"""Archive objects as files in a folder (the embedded default, one host)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = str(root)

    def put(self, key: str, data: bytes) -> None:
        # Written beside its name, fsynced, then renamed over it: a reader (or a crash) sees the
        # whole old object or the whole new one, never a torn file.
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        with partial.open("wb") as fo:
            fo.write(data)
            fo.flush()
            os.fsync(fo.fileno())
        partial.replace(path)
        # The new name must be durable too, or an fsynced file could vanish with its directory entry.
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def keys(self, under: str = "") -> Iterator[str]:
        base = self.root / under
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*.avro")):
            if not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix()
