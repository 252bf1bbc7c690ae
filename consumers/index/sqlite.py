"""The file index in SQLite + FTS5, in the member's data directory: the embedded default.

Writes are one transaction per batch (WAL, `synchronous=FULL`) holding one statement: the
batch's rows go in as one JSON array that SQLite unpacks (`json_each`), so the per-row work
(the upsert, the FTS triggers) runs inside SQLite, without the GIL, instead of one Python
round trip per row as `executemany` makes (which costs about as much again as the upsert).
The upsert's WHERE clause keeps the newest event per file, `coalesce` keeps fields the newer
event lacks.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from consumers.errors import ConsumerError, PermanentError, TransientError
from consumers.index.base import FileIndex, Hit, query_words
from consumers.index.events import Action, FileEvent
from hookstream.settings import Settings
from hookstream.state.sqlite import write_transaction

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

COLUMNS = (
    "workspace_id, object_id, name, path, size, event_time_ms, received_at_ms,"
    " event_type, last_event_id, deleted"
)

# Only a strictly newer event changes a row: (event time, receive time) orders events of one
# file; the same event delivered again is equal, hence a no-op.
ON_CONFLICT = """
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

# One row per element of the JSON array bound to `?`, in the array's order (a file's later row in
# the batch meets its earlier one as a conflict, and of two equal ones the first stays, as with
# one statement per row). "WHERE true" keeps SQLite from reading ON CONFLICT as a join's ON.
UPSERT_ROWS = (
    f"INSERT INTO files ({COLUMNS}) SELECT "
    + ", ".join(f"json_extract(value, '$[{n}]')" for n in range(len(COLUMNS.split(","))))
    + " FROM json_each(?) WHERE true ORDER BY key"
    + ON_CONFLICT
)

Row = tuple[str, str, str | None, str | None, int | None, int, int, str, str, int]  # COLUMNS' order


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
        # A lone surrogate (JSON allows "\ud800") would reach SQLite as invalid UTF-8 that every
        # later search of its row fails to read: it becomes "?", as executemany could not bind it.
        rows = json.dumps([row(e) for e in events], ensure_ascii=False).encode(errors="replace").decode()
        try:
            with write_transaction(self._db):
                self._db.execute(UPSERT_ROWS, (rows,))
        except sqlite3.OperationalError as exc:  # locked or busy: another writer, try again
            raise TransientError(f"index write failed: {exc}") from exc
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
