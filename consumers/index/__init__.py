"""The indexer's file index: the event mapping (`events`), one interface (`base.FileIndex`) and
its backends: SQLite in the data directory by default (`sqlite`), OpenSearch shared by every
member when HOOKSTREAM_OPENSEARCH_URL is set (`opensearch`)."""

from __future__ import annotations

from consumers.index.base import FileIndex
from hookstream.settings import Settings


def open_index(settings: Settings, readonly: bool = False) -> FileIndex:
    """The configured index; `readonly` for searching (nothing is created)."""
    if settings.opensearch_url:
        from consumers.index.opensearch import OpenSearchIndex  # the client is loaded only when used

        return OpenSearchIndex(settings, create=not readonly)
    from consumers.index.sqlite import SqliteIndex, index_path

    return SqliteIndex(index_path(settings), readonly=readonly)
