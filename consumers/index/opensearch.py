"""The file index in OpenSearch, shared by every member of the group (HOOKSTREAM_OPENSEARCH_URL).

OpenSearch itself enforces the index's semantics, so members racing on one file cannot break
them:
- one document per file: its `_id` is made of (workspace_id, object_id);
- the newest event wins: each write carries an external version made of the event time, then
  the receive time, and OpenSearch refuses one not above the document's (409, an older or
  repeated event: success);
- a removal is a tombstone document (`deleted: true`, filtered out of search), never a
  delete: a deleted document's version is forgotten after `index.gc_deletes`, a tombstone's
  never is, so a late older "added" cannot resurrect the file however late it comes.

Writes are one `_bulk` per batch through the alias, which must exist (`require_alias`: a
missing index is never auto-created with a guessed mapping). Refresh: none per request; the
index refreshes every second (`refresh_interval: 1s`, set explicitly), so search sees a batch
within a second of `write` returning. A forced refresh per batch would make a tiny segment per
batch per member (merge pressure under load); `refresh=wait_for` would hold every batch up to
a second, capping a member at one batch per second. Durability does not depend on it: the
bulk answers after the translog is fsynced (`index.translog.durability: request`).

No analysis module is needed (2.19's test distribution has none): names and paths are split
into words here (`base.words`) into `words`, analysed on whitespace only, with prefixes
indexed so that every search word is one term lookup.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as ClientConnectionError
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError

from consumers.errors import ConsumerError, PermanentError, TransientError
from consumers.index.base import FileIndex, Hit, query_words, words
from consumers.index.events import Action, FileEvent
from hookstream.settings import Settings

SCHEMA_VERSION = 1  # the concrete index is `<alias>-v<N>`; a new mapping is a new N, reindexed
MAPPING: dict[str, Any] = {
    "dynamic": "strict",  # a field nobody mapped is a per-document error, never a guessed type
    "properties": {
        "workspace_id": {"type": "keyword"},
        "object_id": {"type": "keyword"},
        "name": {"type": "keyword"},
        "path": {"type": "keyword"},
        "words": {
            "type": "text",
            "analyzer": "whitespace",
            "index_prefixes": {"min_chars": 1, "max_chars": 19},
        },
        "size": {"type": "long"},
        "event_time_ms": {"type": "date", "format": "epoch_millis"},
        "received_at_ms": {"type": "date", "format": "epoch_millis"},
        "event_type": {"type": "keyword"},
        "last_event_id": {"type": "keyword"},
        "deleted": {"type": "boolean"},
    },
}
INDEX_SETTINGS: dict[str, Any] = {
    "number_of_shards": 1,
    "auto_expand_replicas": "0-1",  # one copy on a single node, a replica as soon as there are two
    "refresh_interval": "1s",  # search sees a batch within a second (see the module docstring)
}

# An external version orders the events of one file as SQLite does: event time, then receive
# time. The receive time enters as its delay after the event (up to ~17 min; later is equal).
_DELAY_BITS = 20
_MAX_DELAY = (1 << _DELAY_BITS) - 1
_MAX_TIME = (1 << (63 - _DELAY_BITS)) - 1  # year 2248
_MAX_ID_BYTES = 512  # OpenSearch's limit on `_id`
_FIELDS = ("name", "path", "size")
# Only what is read back from a bulk response: parsing every item's full answer costs more
# than the write itself on a large batch.
_BULK_FILTER = "errors,items.*.status,items.*.error.type,items.*.error.reason"
# The bulk body is built here, once per event: a compact encoder and a template for the action
# line cost a third of json.dumps' time (the member shares its CPU with the rest of the batch).
_encode = json.JSONEncoder(separators=(",", ":")).encode  # ASCII: a lone surrogate stays valid JSON
_ACTION = '{"index":{"_id":%s,"version":%d,"version_type":"external"}}'
_HIT_FIELDS = ["workspace_id", "object_id", "name", "path", "size", "event_time_ms", "last_event_id"]


def version(event: FileEvent) -> int:
    when = min(max(event.event_time_ms, 0), _MAX_TIME)
    delay = min(max(event.received_at_ms - event.event_time_ms, 0), _MAX_DELAY)
    return (when << _DELAY_BITS) | delay


def doc_id(workspace_id: str, object_id: str) -> str:
    """One `_id` per file; the length prefix keeps ("a/b", "c") apart from ("a", "b/c")."""
    key = f"{len(workspace_id)}:{workspace_id}/{object_id}"
    if len(key.encode()) <= _MAX_ID_BYTES:
        return key
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def _words(name: str | None, path: str | None) -> str:
    return " ".join(words(" ".join(part for part in (name, path) if part)))


def document(event: FileEvent) -> dict[str, Any]:
    return {
        "workspace_id": event.workspace_id,
        "object_id": event.object_id,
        "name": event.name,
        "path": event.path,
        "words": _words(event.name, event.path),
        "size": event.size,
        "event_time_ms": event.event_time_ms,
        "received_at_ms": event.received_at_ms,
        "event_type": event.event_type,
        "last_event_id": event.event_id,
        "deleted": event.action is Action.REMOVE,
    }


def client(settings: Settings) -> OpenSearch:
    if not settings.opensearch_url:
        raise ConsumerError("HOOKSTREAM_OPENSEARCH_URL is not set")
    auth = None
    if settings.opensearch_user:
        auth = (settings.opensearch_user, settings.opensearch_password or "")
    return OpenSearch(
        hosts=[settings.opensearch_url],
        http_auth=auth,
        verify_certs=True,
        ca_certs=str(settings.opensearch_ca_file) if settings.opensearch_ca_file else None,
        timeout=30,
        max_retries=0,  # the runtime retries, with backoff, and counts it
        http_compress=False,
    )


def _transient(exc: TransportError) -> bool:
    status = exc.status_code  # "N/A" when there was no answer: refused, reset, timed out
    return (
        isinstance(exc, ClientConnectionError) or status == 429 or (isinstance(status, int) and status >= 500)
    )


class OpenSearchIndex(FileIndex):
    def __init__(self, settings: Settings, create: bool = True) -> None:
        """`create`: make the index and its alias when missing (members do; `search` does not)."""
        self.alias = settings.opensearch_index
        self._client = client(settings)
        self._where = f"OpenSearch at {settings.opensearch_url}"
        if create:
            self.create()

    # -- the index ------------------------------------------------------------------------------

    def create(self) -> bool:
        """Create `<alias>-v1` with the mapping, reached through the alias, unless the alias
        exists. Idempotent, and safe when members start together. True when it was created."""
        try:
            if self._client.indices.exists_alias(name=self.alias):
                return False
            self._client.indices.create(
                index=f"{self.alias}-v{SCHEMA_VERSION}",
                body={
                    "settings": {"index": INDEX_SETTINGS},
                    "mappings": MAPPING,
                    "aliases": {self.alias: {}},
                },
            )
            return True
        except RequestError as exc:
            if exc.error == "resource_already_exists_exception":  # another member was first
                return False
            raise ConsumerError(f"{self._where} refused to create index {self.alias}: {exc.info}") from exc
        except TransportError as exc:
            if _transient(exc):
                raise TransientError(f"{self._where} could not create the index: {exc}") from exc
            raise ConsumerError(f"{self._where} refused to create index {self.alias}: {exc}") from exc

    # -- writing ---------------------------------------------------------------------------------

    def write(self, batch: Iterable[FileEvent]) -> dict[int, PermanentError]:
        events = list(batch)
        if not events:
            return {}
        ids = [doc_id(e.workspace_id, e.object_id) for e in events]
        versions = [version(e) for e in events]
        docs = self._complete([document(e) for e in events], ids, versions)
        lines = []
        for key, ver, doc in zip(ids, versions, docs, strict=True):
            lines.append(_ACTION % (_encode(key), ver))
            lines.append(_encode(doc))
        try:
            answer = self._client.bulk(
                body="\n".join(lines) + "\n",
                index=self.alias,
                params={"require_alias": "true", "filter_path": _BULK_FILTER},
            )
        except TransportError as exc:
            # A whole request refused (5xx, 429, unreachable) is the batch's: try it again.
            # A 4xx for the whole request (say, a lost alias) is no record's fault either.
            raise TransientError(f"{self._where}: bulk write failed: {exc}") from exc
        if not answer.get("errors"):
            return {}
        return self._refused(answer["items"])

    def _complete(
        self, docs: list[dict[str, Any]], ids: list[str], versions: list[int]
    ) -> list[dict[str, Any]]:
        """Fill the fields an event lacks from the document it replaces (as SQLite's `coalesce`):
        the batch's earlier events, else what OpenSearch holds. Best effort across members: a
        member writing the same file between this read and the bulk may win with its fields."""
        gaps = {key for key, doc in zip(ids, docs, strict=True) if any(doc[f] is None for f in _FIELDS)}
        if not gaps:
            return docs
        latest = self._current(sorted(gaps))
        for key, ver, doc in zip(ids, versions, docs, strict=True):
            held = latest.get(key)
            if held is not None and held[0] >= ver:
                continue  # older than what is there: OpenSearch refuses it anyway
            if held is not None:
                for field in _FIELDS:
                    if doc[field] is None:
                        doc[field] = held[1].get(field)
                doc["words"] = _words(doc["name"], doc["path"])
            latest[key] = (ver, doc)
        return docs

    def _current(self, ids: list[str]) -> dict[str, tuple[int, dict[str, Any]]]:
        try:
            found = self._client.mget(
                body={"ids": ids}, index=self.alias, params={"_source_includes": ",".join(_FIELDS)}
            )
        except TransportError as exc:
            raise TransientError(f"{self._where}: reading the files to update failed: {exc}") from exc
        return {d["_id"]: (d["_version"], d["_source"]) for d in found["docs"] if d.get("found")}

    def _refused(self, items: list[dict[str, Any]]) -> dict[int, PermanentError]:
        refused: dict[int, PermanentError] = {}
        retry = None
        for position, item in enumerate(items):
            result = item["index"]
            status = result["status"]
            if status < 300 or status == 409:  # 409: an older or repeated event, nothing to do
                continue
            error = result.get("error", {})
            reason = f"{error.get('type')}: {str(error.get('reason'))[:300]}"
            if status == 429 or status >= 500 or error.get("type") == "index_not_found_exception":
                retry = retry or f"{status} {reason}"
            else:
                refused[position] = PermanentError(
                    f"{self._where} refused the file's document ({status} {reason})"
                )
        if retry is not None:
            # Documents already written are simply refused as repeats when the batch comes again.
            raise TransientError(f"{self._where}: bulk write partly failed, the batch is retried: {retry}")
        return refused

    # -- reading ---------------------------------------------------------------------------------

    def search(self, text: str, workspace: str | None = None, limit: int = 20) -> list[Hit]:
        filters: list[dict[str, Any]] = [{"prefix": {"words": word}} for word in query_words(text)]
        filters.append({"term": {"deleted": False}})
        if workspace:
            filters.append({"term": {"workspace_id": workspace}})
        body = {
            "size": limit,
            "query": {"bool": {"filter": filters}},
            "sort": [{"event_time_ms": "desc"}, {"object_id": "asc"}],  # newest files first
            "_source": _HIT_FIELDS,
        }
        try:
            answer = self._client.search(index=self.alias, body=body)
        except NotFoundError as exc:
            raise ConsumerError(
                f"no index {self.alias} at {self._where}; run `hookstream consume indexer` first"
            ) from exc
        except TransportError as exc:
            raise ConsumerError(f"{self._where}: search failed: {exc}") from exc
        return [_hit(found["_source"]) for found in answer["hits"]["hits"]]

    def close(self) -> None:
        self._client.close()


def _hit(source: dict[str, Any]) -> Hit:
    return Hit(
        workspace_id=source["workspace_id"],
        object_id=source["object_id"],
        name=source.get("name"),
        path=source.get("path"),
        size=source.get("size"),
        event_time_ms=int(source["event_time_ms"]),
        last_event_id=source["last_event_id"],
    )
