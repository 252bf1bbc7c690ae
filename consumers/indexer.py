"""The indexer group: a searchable index of files per workspace (SQLite + FTS5).

Event names map to an action whichever spelling arrives (`workspace_storage_file_added`,
`file.created`, `file.uploaded`, `…_updated`, `file.modified`, `…_deleted`, `file.deleted`):
see `action_for`. Each file is one row keyed by (workspace_id, object_id) that remembers the
time of the event that last changed it; an event older than that is ignored, so redeliveries,
replays and out-of-order arrivals never move a file back in time. A removal keeps the row as
a tombstone (hidden from search) so a late "added" cannot resurrect the file.

Rows are staged by `handle` and written by `flush` in one transaction per batch.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from consumers import payload
from consumers.errors import ConsumerError, PermanentError, TransientError
from consumers.handler import Handler, Record
from hookstream.settings import Settings
from schemas.codec import Envelope


class Action(Enum):
    UPSERT = "upsert"
    REMOVE = "remove"


_VERBS = {
    "added": Action.UPSERT,
    "created": Action.UPSERT,
    "uploaded": Action.UPSERT,
    "updated": Action.UPSERT,
    "modified": Action.UPSERT,
    "changed": Action.UPSERT,
    "deleted": Action.REMOVE,
    "removed": Action.REMOVE,
}


@functools.lru_cache(maxsize=1024)  # a topic carries few event names: split each once, not per record
def action_for(event_type: str) -> Action | None:
    """What an event name means for the index, or None when it is not about a file.

    A name is about a file when one of its words is "file" and its last word is a known verb:
    `workspace_storage_file_added`, `share_storage_file_deleted`, `file.uploaded`, `File.Modified`.
    """
    words = re.split(r"[._\-:/ ]+", event_type.strip().lower())
    if "file" not in words[:-1]:
        return None
    return _VERBS.get(words[-1])


@dataclass(frozen=True)
class FileEvent:
    """What one event says about one file."""

    workspace_id: str
    object_id: str
    action: Action
    name: str | None
    path: str | None
    size: int | None
    event_time_ms: int
    received_at_ms: int
    event_type: str
    event_id: str


def file_event(envelope: Envelope) -> FileEvent | None:
    """The file fact in `envelope`, None when the event is not about a file.

    Raises PermanentError for a file event that cannot be indexed (no JSON, no object id).
    """
    action = action_for(envelope.event_type)
    if action is None:
        return None
    fields = payload.parse(envelope.payload)
    if fields is None:
        raise PermanentError(f"{envelope.event_type} payload is not a JSON object")
    object_id = envelope.object_id or payload.object_id(fields)
    if not object_id:
        raise PermanentError(f"{envelope.event_type} names no object_id, so the file cannot be indexed")
    size = payload.lookup(fields, payload.SIZE_KEYS)
    path = payload.lookup(fields, payload.PATH_KEYS)
    received_ms = int(envelope.received_at.timestamp() * 1000)
    occurred_ms = int(envelope.occurred_at.timestamp() * 1000) if envelope.occurred_at else received_ms
    return FileEvent(
        workspace_id=envelope.workspace_id or envelope.partition_key,
        object_id=str(object_id),
        action=action,
        name=payload.file_name(fields),
        path=str(path) if path is not None else None,
        size=_whole_number(size),
        event_time_ms=occurred_ms,
        received_at_ms=received_ms,
        event_type=envelope.event_type,
        event_id=envelope.event_id,
    )


def _whole_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    return None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    object_id TEXT NOT NULL,
    name TEXT,
    path TEXT,
    size INTEGER,
    event_time_ms INTEGER NOT NULL,
    received_at_ms INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    last_event_id TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (workspace_id, object_id)
);
CREATE VIRTUAL TABLE IF NOT EXISTS files_fts USING fts5(
    name, path, content='files', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER IF NOT EXISTS files_ai AFTER INSERT ON files BEGIN
    INSERT INTO files_fts(rowid, name, path) VALUES (new.id, new.name, new.path);
END;
CREATE TRIGGER IF NOT EXISTS files_au AFTER UPDATE ON files BEGIN
    INSERT INTO files_fts(files_fts, rowid, name, path) VALUES ('delete', old.id, old.name, old.path);
    INSERT INTO files_fts(rowid, name, path) VALUES (new.id, new.name, new.path);
END;
"""

# Only a strictly newer event changes a row: (event time, receive time) orders events of one
# file; the same event delivered again is equal, hence a no-op.
_UPSERT = """
INSERT INTO files (workspace_id, object_id, name, path, size, event_time_ms, received_at_ms,
                   event_type, last_event_id, deleted)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (workspace_id, object_id) DO UPDATE SET
    name = coalesce(excluded.name, files.name),
    path = coalesce(excluded.path, files.path),
    size = coalesce(excluded.size, files.size),
    event_time_ms = excluded.event_time_ms,
    received_at_ms = excluded.received_at_ms,
    event_type = excluded.event_type,
    last_event_id = excluded.last_event_id,
    deleted = excluded.deleted
WHERE (excluded.event_time_ms, excluded.received_at_ms) > (files.event_time_ms, files.received_at_ms)
"""


def index_path(settings: Settings) -> Path:
    return settings.data_dir / "index.sqlite3"


@dataclass(frozen=True)
class Hit:
    workspace_id: str
    object_id: str
    name: str | None
    path: str | None
    size: int | None
    event_time_ms: int
    last_event_id: str


class FileIndex:
    """The SQLite file index: batched writes, full-text search."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        if readonly:
            if not path.exists():
                raise ConsumerError(f"no index at {path}; run `hookstream consume indexer` first")
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # One member thread uses it at a time, though not always the thread that built the handler.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")  # readers (search) never block the writer
        self._db.execute("PRAGMA synchronous=FULL")  # a committed batch survives power loss too
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def apply(self, events: list[FileEvent]) -> None:
        """Apply `events` in order, in one transaction."""
        rows = [
            (
                e.workspace_id,
                e.object_id,
                e.name,
                e.path,
                e.size,
                e.event_time_ms,
                e.received_at_ms,
                e.event_type,
                e.event_id,
                int(e.action is Action.REMOVE),
            )
            for e in events
        ]
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(_UPSERT, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # locked or busy: another writer, try again
            raise TransientError(f"index write failed: {exc}") from exc

    def search(self, text: str, workspace: str | None = None, limit: int = 20) -> list[Hit]:
        words = re.findall(r"\w+", text)
        if not words:
            raise ConsumerError(f"search text {text!r} has no words to look for")
        # Each word quoted (no FTS syntax from user input) and prefix-matched; all must match.
        query = " ".join('"{}"*'.format(word.replace('"', '""')) for word in words)
        sql = (
            "SELECT f.workspace_id, f.object_id, f.name, f.path, f.size, f.event_time_ms, f.last_event_id"
            " FROM files_fts JOIN files f ON f.id = files_fts.rowid"
            " WHERE files_fts MATCH ? AND f.deleted = 0"
        )
        params: list[object] = [query]
        if workspace:
            sql += " AND f.workspace_id = ?"
            params.append(workspace)
        sql += " ORDER BY rank LIMIT ?"
        params.append(limit)
        return [Hit(*row) for row in self._db.execute(sql, params)]

    def live_files(self) -> list[tuple[str, str]]:
        """(workspace_id, object_id) of every file not removed."""
        return list(self._db.execute("SELECT workspace_id, object_id FROM files WHERE deleted = 0"))

    def close(self) -> None:
        self._db.close()


class Indexer(Handler):
    def __init__(self, settings: Settings) -> None:
        self._index = FileIndex(index_path(settings))
        self._staged: list[FileEvent] = []

    def handle(self, record: Record) -> None:
        event = file_event(record.envelope)
        if event is not None:
            self._staged.append(event)

    def flush(self) -> None:
        if self._staged:
            self._index.apply(self._staged)
            self._staged.clear()

    def close(self) -> None:
        self._staged.clear()  # never flushed: its offsets were not stored, Kafka delivers it again
        self._index.close()
