"""Event names to index actions, whatever the spelling; file facts out of any payload shape."""

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from consumers.errors import PermanentError
from consumers.index.events import Action, FileEvent, action_for, file_event
from schemas.codec import Envelope


@pytest.mark.parametrize(
    ("event_type", "action"),
    [
        ("workspace_storage_file_added", Action.UPSERT),
        ("share_storage_file_added", Action.UPSERT),
        ("file.created", Action.UPSERT),
        ("file.uploaded", Action.UPSERT),
        ("workspace_storage_file_updated", Action.UPSERT),
        ("file.modified", Action.UPSERT),
        ("file.changed", Action.UPSERT),
        ("File.Modified", Action.UPSERT),
        ("workspace_storage_file_deleted", Action.REMOVE),
        ("file.deleted", Action.REMOVE),
        ("file.removed", Action.REMOVE),
        ("workspace_membership_added", None),
        ("file", None),
        ("file.shared", None),
        ("profile.updated", None),
        ("", None),
    ],
)
def test_every_spelling_maps_to_its_action(event_type: str, action: Action | None) -> None:
    assert action_for(event_type) is action


def _envelope(
    payload: object, event_type: str = "file.created", object_id: str | None = None, **fields: object
) -> Envelope:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    envelope = {
        "event_id": "evt-1",
        "provider": "fastio",
        "event_type": event_type,
        "workspace_id": "ws-1",
        "payload": body,
        "received_at": datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        "object_id": object_id,
        "occurred_at": datetime(2026, 1, 1, 11, 59, tzinfo=UTC),
    }
    return Envelope(**{**envelope, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "payload",
    [
        {"object_id": "o1", "resource": {"name": "a.pdf", "path": "/x/a.pdf", "size": 10}},
        {"data": {"id": "o1", "name": "a.pdf", "path": "/x/a.pdf", "size": "10"}},
        {"data": {"file": {"id": "o1", "name": "a.pdf", "path": "/x/a.pdf", "size": 10}}},
        {"file_id": "o1", "name": "a.pdf", "path": "/x/a.pdf", "size": 10.0},
    ],
)
def test_name_path_size_come_from_wherever_the_provider_put_them(payload: dict) -> None:
    event = file_event(_envelope(payload))
    assert event is not None
    assert (event.object_id, event.name, event.path, event.size) == ("o1", "a.pdf", "/x/a.pdf", 10)
    assert event.event_time_ms == int(datetime(2026, 1, 1, 11, 59, tzinfo=UTC).timestamp() * 1000)


def test_the_envelope_object_id_wins_and_missing_fields_stay_empty() -> None:
    event = file_event(_envelope({"object_id": "from-payload"}, object_id="from-envelope"))
    assert event is not None
    assert (event.object_id, event.name, event.path, event.size) == ("from-envelope", None, None, None)


def test_a_top_level_id_is_the_event_not_the_file() -> None:
    with pytest.raises(PermanentError, match="object_id"):
        file_event(_envelope({"id": "evt-1", "name": "a.pdf"}))


def test_a_file_event_without_json_is_permanent() -> None:
    with pytest.raises(PermanentError, match="not a JSON object"):
        file_event(_envelope(b"<xml/>"))


def test_events_not_about_files_are_ignored_even_without_json() -> None:
    assert file_event(_envelope(b"not json", event_type="workspace_membership_added")) is None


def test_every_field_of_the_file_event() -> None:
    event = file_event(_envelope({"object_id": "o1", "name": "a.pdf", "path": "/a.pdf", "size": 3}))
    assert event == FileEvent(
        workspace_id="ws-1",
        object_id="o1",
        action=Action.UPSERT,
        name="a.pdf",
        path="/a.pdf",
        size=3,
        event_time_ms=1_767_268_740_000,  # 2026-01-01T11:59Z
        received_at_ms=1_767_268_800_000,  # 2026-01-01T12:00Z
        event_type="file.created",
        event_id="evt-1",
    )


def test_times_keep_their_milliseconds_and_an_event_without_its_own_time_took_place_on_receipt() -> None:
    received = datetime(2026, 1, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    event = file_event(_envelope({"object_id": "o1"}, received_at=received, occurred_at=None))
    assert event is not None
    assert (event.received_at_ms, event.event_time_ms) == (1_767_268_800_250, 1_767_268_800_250)


def test_without_a_workspace_the_partition_key_stands_for_it() -> None:
    """A provider without workspaces (`standard`) keys its records by another field."""
    envelope = _envelope(
        {"object_id": "o1"}, provider="standard", workspace_id=None, partition_key="tenant-7"
    )
    event = file_event(envelope)
    assert event is not None
    assert event.workspace_id == "tenant-7"


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, 0),  # an empty file is a real size
        ("0", 0),
        ((1 << 63) - 1, (1 << 63) - 1),  # the largest a signed 64-bit column holds
        (1 << 63, None),
        (1 << 64, None),
        (-1, None),
        (True, None),  # a JSON true is no size
        ("1.5", None),
        (float("inf"), None),
        (float("nan"), None),
    ],
)
def test_sizes_are_whole_numbers_a_64_bit_column_holds(size: object, expected: int | None) -> None:
    event = file_event(_envelope({"object_id": "o1", "size": size}))
    assert event is not None
    assert event.size == expected


def test_the_file_event_is_immutable() -> None:
    event = file_event(_envelope({"object_id": "o1"}))
    assert event is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.size = 1  # type: ignore[misc]


def test_each_event_name_is_split_once_not_per_record() -> None:
    action_for.cache_clear()
    for _ in range(3):
        action_for("file.uploaded")
    assert (action_for.cache_info().misses, action_for.cache_info().hits) == (1, 2)
