"""The one interface of the file index, whatever holds it (SQLite in the data directory, or
OpenSearch shared by every member of the group), and what its implementations share.

Its semantics, which the contract tests check against every backend: one entry per
(workspace_id, object_id); an event older than the one an entry holds changes nothing
(events of one file are ordered by event time, then receive time; the same event again is a
no-op), so redeliveries, replays and racing members never move a file back in time; a field
the newer event lacks keeps its old value; a removal leaves a tombstone, hidden from search,
so a late older "added" cannot resurrect the file; search matches every word as a prefix of
a word of the name or the path.
"""

from __future__ import annotations

import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

from consumers.errors import ConsumerError, PermanentError
from consumers.index.events import FileEvent


@dataclass(frozen=True)
class Hit:
    workspace_id: str
    object_id: str
    name: str | None
    path: str | None
    size: int | None
    event_time_ms: int
    last_event_id: str


class FileIndex(ABC):
    @abstractmethod
    def write(self, events: Iterable[FileEvent]) -> dict[int, PermanentError]:
        """Apply `events` in order, as one write (a transaction, a `_bulk`). `events` may be
        produced lazily; it is always consumed to the end.

        Returns the positions of the events that can never be written, each with why; every
        other event is durable. Raises TransientError when the write should be tried again
        (rewriting events already applied changes nothing)."""

    @abstractmethod
    def search(self, text: str, workspace: str | None = None, limit: int = 20) -> list[Hit]:
        """Live files whose name or path has a word starting with each word of `text`."""

    @abstractmethod
    def close(self) -> None: ...


_WORD = re.compile(r"[^\W_]+")  # runs of letters and digits: `report_2024-final.pdf` is 4 words


def words(text: str) -> list[str]:
    """The words of `text` as search sees them: case and accents folded (`Café` is `cafe`)."""
    if text.isascii():  # most names: nothing to fold but case, at a tenth of the cost
        return _WORD.findall(text.lower())
    folded = unicodedata.normalize("NFKD", text.casefold())
    return _WORD.findall("".join(c for c in folded if not unicodedata.combining(c)))


def query_words(text: str) -> list[str]:
    found = words(text)
    if not found:
        raise ConsumerError(f"search text {text!r} has no words to look for")
    return found
