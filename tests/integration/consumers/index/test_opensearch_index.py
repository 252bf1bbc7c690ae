"""What only the OpenSearch backend has to show: tombstones outlive `index.gc_deletes`, a
document OpenSearch cannot map is refused alone, the index is made once behind its alias with
an explicit mapping, and an unreachable node is a transient failure."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from opensearchpy import OpenSearch

from consumers.errors import ConsumerError, PermanentError, TransientError
from consumers.index.events import Action
from consumers.index.opensearch import SCHEMA_VERSION, OpenSearchIndex, client, doc_id, version
from hookstream.settings import Settings
from hookstream_dev.process import free_port_block
from tests.integration.consumers.index.index_helpers import event


@pytest.fixture
def admin(opensearch_settings: Settings) -> Iterator[OpenSearch]:
    with client(opensearch_settings) as c:
        yield c


def _live(index: OpenSearchIndex, admin: OpenSearch, text: str) -> list[str]:
    admin.indices.refresh(index=index.alias)
    return [hit.name or "" for hit in index.search(text)]


def test_a_late_add_long_after_gc_deletes_stays_removed(
    opensearch_settings: Settings, admin: OpenSearch
) -> None:
    index = OpenSearchIndex(opensearch_settings)
    admin.indices.put_settings(index=index.alias, body={"index": {"gc_deletes": "0s"}})
    index.write([event("o1", 100, name="kept.pdf"), event("o1", 300, Action.REMOVE, name=None)])
    # The control: a real delete's version is forgotten once gc_deletes has passed, and an
    # older write then lands. This is what a tombstone document prevents.
    control = doc_id("ws-1", "control")
    admin.index(index=index.alias, id=control, body=_doc("control.pdf"), params=_external(300))
    admin.delete(index=index.alias, id=control, params=_external(400))
    time.sleep(2)  # well past gc_deletes; a refresh prunes forgotten deletes
    admin.indices.refresh(index=index.alias)
    admin.index(index=index.alias, id=control, body=_doc("control.pdf"), params=_external(200))
    assert admin.get(index=index.alias, id=control)["found"], "the control delete was not forgotten"

    assert index.write([event("o1", 200, name="late.pdf")]) == {}  # refused as older: a success
    assert _live(index, admin, "late") == [] and _live(index, admin, "kept") == []
    index.close()


def _external(ver: int) -> dict[str, str]:
    return {"version": str(ver), "version_type": "external"}


def _doc(name: str) -> dict[str, object]:
    return {"workspace_id": "ws-1", "object_id": "control", "name": name, "words": name, "deleted": False}


def test_a_document_opensearch_cannot_map_is_refused_alone(
    opensearch_settings: Settings, admin: OpenSearch
) -> None:
    index = OpenSearchIndex(opensearch_settings)
    huge = "x" * 40_000  # a keyword term longer than Lucene's 32766 bytes
    refused = index.write(
        [event("o1", 1, name="one.pdf"), event("o2", 1, name=huge), event("o3", 1, name="three.pdf")]
    )
    assert list(refused) == [1] and isinstance(refused[1], PermanentError)
    assert "immense term" in str(refused[1])
    assert sorted(_live(index, admin, "pdf")) == ["one.pdf", "three.pdf"]  # the rest is durable
    index.close()


def test_the_index_is_made_once_behind_its_alias_with_an_explicit_mapping(
    opensearch_settings: Settings, admin: OpenSearch
) -> None:
    first, second = OpenSearchIndex(opensearch_settings), OpenSearchIndex(opensearch_settings)
    assert (first.create(), second.create()) == (False, False)  # both constructors ran it already
    concrete = f"{opensearch_settings.opensearch_index}-v{SCHEMA_VERSION}"
    assert list(admin.indices.get_alias(name=opensearch_settings.opensearch_index)) == [concrete]
    mapping = admin.indices.get_mapping(index=concrete)[concrete]["mappings"]
    assert mapping["dynamic"] == "strict" and mapping["properties"]["workspace_id"]["type"] == "keyword"
    first.close()
    second.close()


def test_versions_order_by_event_time_then_receive_time() -> None:
    a = event("o", 1_000, received_at_ms=1_000)
    assert version(a) < version(event("o", 1_000, received_at_ms=1_001)) < version(event("o", 1_001))
    assert version(event("o", 1_000, received_at_ms=0)) == version(a)  # received "before": no delay
    assert doc_id("a/b", "c") != doc_id("a", "b/c")
    assert len(doc_id("w", "o" * 600)) <= 512


def test_an_unreachable_node_is_transient_and_search_says_where(opensearch_settings: Settings) -> None:
    nowhere = replace(opensearch_settings, opensearch_url=f"http://127.0.0.1:{free_port_block(1)}")
    with pytest.raises(TransientError):
        OpenSearchIndex(nowhere)
    index = OpenSearchIndex(nowhere, create=False)
    with pytest.raises(TransientError, match="bulk write failed"):
        index.write([event("o1", 1)])
    with pytest.raises(ConsumerError, match="search failed"):
        index.search("a")
    index.close()


def test_search_without_the_index_says_how_to_make_it(opensearch_settings: Settings) -> None:
    index = OpenSearchIndex(opensearch_settings, create=False)
    with pytest.raises(ConsumerError, match="consume indexer"):
        index.search("a")
    index.close()
