"""Read each group's effects straight from its sink, counted per event id.

indexer: rows of the SQLite index (one row per file; the suite's events are one file each, so a
row's object id names its event). archiver: records in the Avro container files. notifier:
notifications the local receiver accepted. Readers never go through the consumers' own code:
a bug there must not hide itself.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path

import fastavro

from tests.faults.harness.receiver import NotificationReceiver

GROUPS = ("indexer", "notifier", "archiver")


def index_rows(data_dir: Path) -> Counter[str]:
    """Index rows per event id (object `obj-<hex>` belongs to event `evt-<hex>`)."""
    path = data_dir / "index.sqlite3"
    if not path.exists():
        return Counter()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute("SELECT object_id FROM files").fetchall()
    except sqlite3.OperationalError:  # the indexer has not created its table yet
        return Counter()
    finally:
        db.close()
    return Counter("evt-" + oid.removeprefix("obj-") for (oid,) in rows if oid.startswith("obj-"))


def archive_records(data_dir: Path, topic: str) -> Counter[str]:
    """Archived records per event id, from every whole block of every archive file."""
    counts: Counter[str] = Counter()
    for path in sorted((data_dir / "archive" / topic).glob("**/*.avro")):
        with path.open("rb") as fo:
            try:
                for block in fastavro.block_reader(fo):
                    counts.update(str(record["event_id"]) for record in block)  # type: ignore[index,call-overload]
            except Exception:
                pass
    return counts


def effects(
    data_dir: Path, topic: str, receiver: NotificationReceiver, members_killed: bool = False
) -> dict[str, Counter[str]]:
    return {
        "indexer": index_rows(data_dir),
        "notifier": receiver.event_ids(honour_keys=members_killed),
        "archiver": archive_records(data_dir, topic),
    }
