"""Both file index backends behind one fixture, and what the index tests build events from."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from consumers.index.base import FileIndex
from consumers.index.events import Action, FileEvent
from consumers.index.opensearch import OpenSearchIndex, client
from consumers.index.sqlite import SqliteIndex
from hookstream.settings import Settings

BACKENDS = ["sqlite", "opensearch"]


@dataclass
class Backend:
    """An index, a second writer on the same storage (another member), and `settle`: make the
    writes so far visible to search (OpenSearch shows them within its 1 s refresh)."""

    index: FileIndex
    other: Callable[[], FileIndex]
    settle: Callable[[], None]


def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    opened: list[FileIndex] = []

    def keep(index: FileIndex) -> FileIndex:
        opened.append(index)
        return index

    if request.param == "sqlite":
        path = tmp_path / "index.sqlite3"
        yield Backend(keep(SqliteIndex(path)), lambda: keep(SqliteIndex(path)), lambda: None)
    else:
        settings: Settings = request.getfixturevalue("opensearch_settings")
        admin = client(settings)
        yield Backend(
            keep(OpenSearchIndex(settings)),
            lambda: keep(OpenSearchIndex(settings)),
            lambda: admin.indices.refresh(index=settings.opensearch_index),
        )
        admin.close()
    for index in opened:
        index.close()


def event(
    object_id: str, t: int, action: Action = Action.UPSERT, name: str | None = "a.pdf", **kw: object
) -> FileEvent:
    fields: dict[str, object] = {
        "workspace_id": "ws-1",
        "object_id": object_id,
        "action": action,
        "name": name,
        "path": f"/docs/{name}" if name else None,
        "size": t,
        "event_time_ms": t,
        "received_at_ms": t,
        "event_type": "file.x",
        "event_id": f"evt-{object_id}-{t}",
    }
    return FileEvent(**{**fields, **kw})  # type: ignore[arg-type]
