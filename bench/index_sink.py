"""The indexer's sink side: events/s into each index backend against a plain loop writing the
same documents into the same index, in the same run (issue 13's 0.8x targets).

- OpenSearch: the indexer (`start_batch`, `handle`, `flush` on decoded records: event mapping,
  documents, one `_bulk` per batch, response checks) against opensearch-py's `helpers.bulk`
  writing the same documents (same ids, external versions, index, batch size) built beforehand.
- SQLite: the indexer against a plain `executemany` of the same rows, one transaction per
  batch, into the same schema and triggers (`consumers.index.sqlite.connect`).

Kafka is left out on both sides: the runtime's share is `bench.groups`' comparison with the raw
poll loop. Each round writes into a fresh index and runs the two sides one after the other, the
first alternating, so both see the same machine; the median round counts. Rates are wall-clock:
OpenSearch is another process, and SQLite's commit waits for its fsync.

    python -m bench.index_sink [--opensearch-url URL] [--events N] [--rounds R]

Without `--opensearch-url` a local OpenSearch is started for the run (`hookstream_dev`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from functools import partial
from pathlib import Path

from opensearchpy import helpers

from consumers.handler import Record
from consumers.index.events import FileEvent, file_event
from consumers.index.opensearch import OpenSearchIndex, client, doc_id, document, version
from consumers.index.sqlite import COLUMNS, ON_CONFLICT, Row, connect, row
from consumers.indexer import Indexer
from hookstream.settings import Settings
from schemas import codec


@dataclass(frozen=True)
class SinkRate:
    backend: str  # "opensearch" or "sqlite"
    events: int  # per round
    batch: int
    indexer_eps: float  # median round
    plain_eps: float  # median round
    ratio: float  # median of the rounds' indexer/plain ratios
    ratios: tuple[float, ...]  # every round's, in order


@dataclass(frozen=True)
class IndexSinkResult:
    rounds: int
    opensearch_version: str
    opensearch: SinkRate
    sqlite: SinkRate


def records(events: int) -> list[Record]:
    """`events` file events of distinct files over 8 workspaces, as the runtime hands them over."""
    start = codec.utc_now()
    out = []
    for n in range(events):
        body = {
            "object_id": f"obj-{n}",
            "resource": {
                "name": f"report_2024-{n}-final.pdf",
                "path": f"/team/q{n % 4}/report_2024-{n}.pdf",
                "size": n,
            },
        }
        envelope = codec.Envelope(
            event_id=f"evt-{n}",
            provider="fastio",
            event_type="workspace_storage_file_added",
            workspace_id=f"ws-{n % 8}",
            payload=json.dumps(body).encode(),
            received_at=start,
            object_id=f"obj-{n}",
            occurred_at=start - timedelta(milliseconds=n),
        )
        out.append(Record(envelope, "bench", 0, n, 0))
    return out


def _events(batch: list[Record]) -> list[FileEvent]:
    found = [file_event(r.envelope) for r in batch]
    return [e for e in found if e is not None]


def _batches(items: list[Record], size: int) -> Iterator[list[Record]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _order(round_: int) -> tuple[str, str]:
    """Who goes first alternates: a warmer cache or a quieter moment favours neither side."""
    return ("indexer", "plain") if round_ % 2 == 0 else ("plain", "indexer")


def _timed(work: Callable[[], None], events: int) -> float:
    started = time.perf_counter()
    work()
    return events / (time.perf_counter() - started)


def _indexer_run(settings: Settings, batches: list[list[Record]]) -> None:
    indexer = Indexer(settings)
    try:
        for batch in batches:
            indexer.start_batch(batch)
            for record in batch:
                indexer.handle(record)
            indexer.flush()
    finally:
        indexer.close()


def _rate(backend: str, events: int, batch: int, pairs: list[tuple[float, float]]) -> SinkRate:
    ratios = tuple(round(mine / plain, 3) for mine, plain in pairs)
    return SinkRate(
        backend=backend,
        events=events,
        batch=batch,
        indexer_eps=round(statistics.median(mine for mine, _ in pairs)),
        plain_eps=round(statistics.median(plain for _, plain in pairs)),
        ratio=round(statistics.median(ratios), 3),
        ratios=ratios,
    )


def _plain_bulk(url: str, index: str, actions: list[dict[str, object]], batch: int) -> None:
    with client(replace(Settings(), opensearch_url=url)) as plain:
        helpers.bulk(plain, actions, index=index, chunk_size=batch, max_chunk_bytes=1 << 30)


# The same upsert as the indexer's, one row per execution.
_PLACEHOLDERS = ", ".join("?" * len(COLUMNS.split(",")))
_UPSERT_ONE = f"INSERT INTO files ({COLUMNS}) VALUES ({_PLACEHOLDERS})" + ON_CONFLICT


def _plain_executemany(db: sqlite3.Connection, rows: list[list[Row]]) -> None:
    for chunk in rows:
        db.execute("BEGIN IMMEDIATE")
        db.executemany(_UPSERT_ONE, chunk)
        db.execute("COMMIT")


def opensearch_rate(url: str, recs: list[Record], batch: int, rounds: int) -> SinkRate:
    batches = list(_batches(recs, batch))
    actions: list[dict[str, object]] = [
        {
            "_id": doc_id(e.workspace_id, e.object_id),
            "version": version(e),
            "version_type": "external",
            "_source": document(e),
        }
        for e in _events(recs)
    ]
    pairs = []
    for n in range(rounds):
        rates = {}
        for side in _order(n):
            settings = replace(
                Settings(), opensearch_url=url, opensearch_index=f"bench-files-{uuid.uuid4().hex[:8]}"
            )
            OpenSearchIndex(settings).close()  # a fresh index, made before the clock starts
            if side == "indexer":
                work = partial(_indexer_run, settings, batches)
            else:
                work = partial(_plain_bulk, url, settings.opensearch_index, actions, batch)
            rates[side] = _timed(work, len(recs))
            with client(settings) as admin:
                admin.indices.delete(index=f"{settings.opensearch_index}-*")
        pairs.append((rates["indexer"], rates["plain"]))
    return _rate("opensearch", len(recs), batch, pairs)


def sqlite_rate(recs: list[Record], batch: int, rounds: int) -> SinkRate:
    batches = list(_batches(recs, batch))
    rows = [[row(e) for e in _events(b)] for b in batches]
    pairs = []
    work = Path(tempfile.mkdtemp(prefix="bench-index-"))
    try:
        for n in range(rounds):
            rates = {}
            for side in _order(n):
                if side == "indexer":
                    settings = replace(Settings(), data_dir=work / f"indexer-{n}", opensearch_url=None)
                    rates[side] = _timed(partial(_indexer_run, settings, batches), len(recs))
                else:
                    db = connect(work / f"plain-{n}.sqlite3")
                    rates[side] = _timed(partial(_plain_executemany, db, rows), len(recs))
                    db.close()
            pairs.append((rates["indexer"], rates["plain"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _rate("sqlite", len(recs), batch, pairs)


@contextmanager
def _opensearch(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from hookstream_dev.opensearch import LocalOpenSearch
    from hookstream_dev.process import free_port_block

    home = Path(tempfile.mkdtemp(prefix="bench-opensearch-"))
    node = LocalOpenSearch(home, port=free_port_block(2))
    try:
        node.start()
        yield node.url
    finally:
        node.stop()
        shutil.rmtree(home, ignore_errors=True)


def run(
    opensearch_url: str | None = None, events: int = 20_000, batch: int = 500, rounds: int = 3
) -> IndexSinkResult:
    """Both comparisons; `opensearch_url` None starts a local node for the run."""
    recs = records(events)
    with _opensearch(opensearch_url) as url, client(replace(Settings(), opensearch_url=url)) as info:
        found = str(info.info()["version"]["number"])
        return IndexSinkResult(
            rounds=rounds,
            opensearch_version=found,
            opensearch=opensearch_rate(url, recs, batch, rounds),
            sqlite=sqlite_rate(recs, batch, rounds),
        )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.index_sink", description=__doc__.split("\n")[0])
    parser.add_argument("--opensearch-url", default=None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(asdict(run(args.opensearch_url, args.events, args.batch, args.rounds)), indent=2))


if __name__ == "__main__":
    main()
