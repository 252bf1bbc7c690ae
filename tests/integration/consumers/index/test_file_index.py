"""The file index contract, against every backend (SQLite, and a real OpenSearch): the newest
event wins per file whatever the arrival order and whichever member writes it, tombstones hold,
missing fields keep their values, search matches word prefixes, is scoped and is safe."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumers.errors import ConsumerError
from consumers.index.events import Action, FileEvent
from consumers.index.sqlite import SqliteIndex
from tests.integration.consumers.index.index_helpers import BACKENDS, Backend, backend, event


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield from backend(request, tmp_path)


def _names(store: Backend, text: str, **kw: object) -> list[str | None]:
    store.settle()
    return [hit.name for hit in store.index.search(text, **kw)]  # type: ignore[arg-type]


def test_an_older_event_never_overwrites_a_newer_one(store: Backend) -> None:
    store.index.write([event("o1", 200, name="new.pdf"), event("o1", 100, name="old.pdf")])
    store.settle()
    (hit,) = store.index.search("pdf")
    assert (hit.name, hit.size, hit.last_event_id) == ("new.pdf", 200, "evt-o1-200")


def test_equal_event_times_are_ordered_by_receive_time(store: Backend) -> None:
    store.index.write([event("o1", 100, name="late.pdf", received_at_ms=300)])
    store.index.write([event("o1", 100, name="early.pdf", received_at_ms=200, event_id="e2")])
    assert _names(store, "pdf") == ["late.pdf"]


def test_a_redelivered_batch_changes_nothing(store: Backend) -> None:
    batch = [event("o1", 100), event("o2", 100), event("o1", 150, name="b.pdf")]
    assert store.index.write(batch) == {}
    assert store.index.write(batch) == {}
    store.settle()
    assert sorted((h.object_id, h.name) for h in store.index.search("pdf")) == [
        ("o1", "b.pdf"),
        ("o2", "a.pdf"),
    ]


def test_a_removal_is_not_undone_by_a_late_older_add(store: Backend) -> None:
    store.index.write([event("o1", 100), event("o1", 300, Action.REMOVE, name=None)])
    store.index.write([event("o1", 200, name="late.pdf")])
    assert _names(store, "late") == [] and _names(store, "a") == []
    store.index.write([event("o1", 400, name="back.pdf")])  # a newer add does bring it back
    assert _names(store, "back") == ["back.pdf"]


def test_fields_a_newer_event_lacks_keep_their_values(store: Backend) -> None:
    store.index.write([event("o1", 100, name="kept.pdf")])
    store.index.write([event("o1", 200, name=None, size=None, event_id="touch")])
    store.settle()
    (hit,) = store.index.search("kept")
    assert (hit.name, hit.path, hit.size, hit.last_event_id) == ("kept.pdf", "/docs/kept.pdf", 100, "touch")


def test_every_value_is_stored_as_it_came(store: Backend) -> None:
    """Whatever carries the batch to the index (SQLite binds it as one JSON array), text, the
    largest size and absent fields come back unchanged."""
    name = 'Ünïcode 文件 "quoted" back\\slash 😀.pdf'
    store.index.write(
        [
            event("o1", 100, name=name, size=(1 << 63) - 1),
            event("o2", 100, name="zero.pdf", size=0, path=None),
            event("o3", 100, name="nosize.pdf", size=None),
        ]
    )
    store.settle()
    found = {h.object_id: (h.name, h.path, h.size) for h in store.index.search("pdf", limit=10)}
    assert found == {
        "o1": (name, f"/docs/{name}", (1 << 63) - 1),
        "o2": ("zero.pdf", None, 0),
        "o3": ("nosize.pdf", "/docs/nosize.pdf", None),
    }


def test_every_word_of_a_name_matches_as_a_prefix(store: Backend) -> None:
    store.index.write(
        [event("o1", 1, name="report_2024-final.pdf", path="/Équipe/Q1 plans/report_2024-final.pdf")]
    )
    for text in ("report", "2024", "final", "fin", "REP 20", "pdf", "equipe", "équipe plans", "q1"):
        assert _names(store, text) == ["report_2024-final.pdf"], text
    assert _names(store, "reports") == [] and _names(store, "final 2025") == []


def test_search_is_scoped_by_workspace_and_immune_to_query_syntax(store: Backend) -> None:
    store.index.write(
        [event("o1", 1, name="q1 report.pdf"), event("o2", 1, name="q1 report.pdf", workspace_id="ws-2")]
    )
    store.settle()
    assert {h.workspace_id for h in store.index.search("report q1")} == {"ws-1", "ws-2"}
    assert [h.workspace_id for h in store.index.search("rep", workspace="ws-2")] == ["ws-2"]
    assert store.index.search('report" OR NOT "x* NEAR(') == []
    assert store.index.search("report", limit=1)[0].name == "q1 report.pdf"
    with pytest.raises(ConsumerError, match="no words"):
        store.index.search('"*"')


def test_racing_writers_in_any_order_leave_the_newest_state_of_every_file(store: Backend) -> None:
    """A history of adds, updates and removals of 30 files, shuffled, cut into batches written
    alternately by two members: each file ends in the state of its newest event."""
    rng = random.Random(13)
    history: list[FileEvent] = []
    for n in range(30):
        for t in rng.sample(range(1, 1000), 4):
            action = Action.REMOVE if rng.random() < 0.3 else Action.UPSERT
            history.append(event(f"f{n}", t, action, name=f"doc{n}-v{t}.txt"))
    newest = {e.object_id: e for e in sorted(history, key=lambda e: e.event_time_ms)}
    rng.shuffle(history)
    writers = [store.index, store.other()]
    for start in range(0, len(history), 7):
        writers[start // 7 % 2].write(history[start : start + 7])
    store.settle()
    live = {h.object_id: h.name for h in store.index.search("doc", limit=100)}
    assert live == {e.object_id: e.name for e in newest.values() if e.action is Action.UPSERT}


def test_a_missing_sqlite_index_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConsumerError, match="consume indexer"):
        SqliteIndex(tmp_path / "nothing.sqlite3", readonly=True)


def test_a_lone_surrogate_in_a_name_leaves_the_sqlite_row_readable(tmp_path: Path) -> None:
    index = SqliteIndex(tmp_path / "index.sqlite3")
    index.write([event("o1", 100, name="bad\ud800name.pdf")])  # JSON allows "\ud800"; UTF-8 does not
    assert [hit.name for hit in index.search("bad")] == ["bad?name.pdf"]
    index.close()
