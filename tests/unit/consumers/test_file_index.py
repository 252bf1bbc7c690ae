"""The SQLite index: newest event wins per file, tombstones hold, search is safe and scoped."""

from pathlib import Path

import pytest

from consumers.errors import ConsumerError
from consumers.indexer import Action, FileEvent, FileIndex


def _event(
    object_id: str, t: int, action: Action = Action.UPSERT, name: str | None = "a.pdf", **kw
) -> FileEvent:
    fields = {
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
    return FileEvent(**{**fields, **kw})


@pytest.fixture
def index(tmp_path: Path) -> FileIndex:
    return FileIndex(tmp_path / "index.sqlite3")


def test_an_older_event_never_overwrites_a_newer_one(index: FileIndex) -> None:
    index.apply([_event("o1", 200, name="new.pdf"), _event("o1", 100, name="old.pdf")])
    (hit,) = index.search("pdf")
    assert (hit.name, hit.size, hit.last_event_id) == ("new.pdf", 200, "evt-o1-200")


def test_a_redelivered_batch_changes_nothing(index: FileIndex) -> None:
    batch = [_event("o1", 100), _event("o2", 100), _event("o1", 150, name="b.pdf")]
    index.apply(batch)
    index.apply(batch)
    assert sorted(index.live_files()) == [("ws-1", "o1"), ("ws-1", "o2")]
    assert [h.name for h in index.search("b")] == ["b.pdf"]


def test_a_removal_is_not_undone_by_a_late_older_add(index: FileIndex) -> None:
    index.apply([_event("o1", 100), _event("o1", 300, Action.REMOVE, name=None)])
    index.apply([_event("o1", 200, name="late.pdf")])
    assert index.live_files() == []
    assert index.search("late") == [] and index.search("a") == []
    index.apply([_event("o1", 400, name="back.pdf")])  # a newer add does bring it back
    assert [h.name for h in index.search("back")] == ["back.pdf"]


def test_search_is_scoped_by_workspace_and_immune_to_query_syntax(index: FileIndex) -> None:
    index.apply(
        [_event("o1", 1, name="q1 report.pdf"), _event("o2", 1, name="q1 report.pdf", workspace_id="ws-2")]
    )
    assert {h.workspace_id for h in index.search("report q1")} == {"ws-1", "ws-2"}
    assert [h.workspace_id for h in index.search("rep", workspace="ws-2")] == ["ws-2"]
    assert index.search('report" OR NOT "x* NEAR(') == []
    with pytest.raises(ConsumerError, match="no words"):
        index.search('"*"')


def test_a_missing_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConsumerError, match="consume indexer"):
        FileIndex(tmp_path / "nothing.sqlite3", readonly=True)
