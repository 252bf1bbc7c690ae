"""The file index in SQLite + FTS5, in the member's data directory: the embedded default.

Writes are one transaction per batch (WAL, `synchronous=FULL`); the upsert's WHERE clause
keeps the newest event per file, `coalesce` keeps fields the newer event lacks.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import TypeVar

from consumers.errors import ConsumerError, PermanentError, TransientError
from consumers.index.base import FileIndex, Hit, query_words
from consumers.index.events import Action, FileEvent
from hookstream.settings import Settings

SCHEMA = """
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
UPSERT = """
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

Row = tuple[str, str, str | None, str | None, int | None, int, int, str, str, int]
T = TypeVar("T")


def index_path(settings: Settings) -> Path:
    return settings.data_dir / "index.sqlite3"


def row(e: FileEvent) -> Row:
    return (
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


def connect(path: Path) -> sqlite3.Connection:
    """A writer's connection to the index at `path`, its schema created when missing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # One member thread uses it at a time, though not always the thread that built the handler.
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")  # readers (search) never block the writer
    db.execute("PRAGMA synchronous=FULL")  # a committed batch survives power loss too
    db.execute("PRAGMA busy_timeout=5000")
    db.executescript(SCHEMA)
    return db


class SqliteIndex(FileIndex):
    def __init__(self, path: Path, readonly: bool = False) -> None:
        if readonly:
            if not path.exists():
                raise ConsumerError(f"no index at {path}; run `hookstream consume indexer` first")
            self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            return
        self._db = connect(path)

    def write(self, events: Iterable[FileEvent]) -> dict[int, PermanentError]:
        rows = read_ahead(row(e) for e in events)
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(UPSERT, rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # locked or busy: another writer, try again
            raise TransientError(f"index write failed: {exc}") from exc
        finally:
            rows.close()  # the events are all produced before the caller looks at them
        return {}  # every value fits a column: nothing here is refused for good

    def search(self, text: str, workspace: str | None = None, limit: int = 20) -> list[Hit]:
        # Each word quoted (no FTS syntax from user input) and prefix-matched; all must match.
        query = " ".join(f'"{word}"*' for word in query_words(text))
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
        return [Hit(*found) for found in self._db.execute(sql, params)]

    def close(self) -> None:
        self._db.close()


def read_ahead(items: Iterable[T], chunk: int = 50) -> Generator[T, None, None]:
    """`items`, produced by a thread of their own, run to the end whatever the caller does.

    SQLite releases the GIL while it executes a statement, so producing the next rows (the
    events' mapping, in Python) overlaps writing the previous ones instead of adding to it.
    """
    ready: queue.SimpleQueue[list[T] | BaseException | None] = queue.SimpleQueue()

    def produce() -> None:
        try:
            batch: list[T] = []
            for item in items:
                batch.append(item)
                if len(batch) == chunk:
                    ready.put(batch)
                    batch = []
            ready.put(batch)
            ready.put(None)
        except BaseException as exc:  # re-raised in the caller's thread
            ready.put(exc)

    producer = threading.Thread(target=produce, name="index-read-ahead", daemon=True)
    producer.start()
    try:
        while (got := ready.get()) is not None:
            if isinstance(got, BaseException):
                raise got
            yield from got
    finally:
        producer.join()  # never left running (nor half done) behind a failed write
