"""Event names to index actions, whatever the spelling; file facts out of any payload shape."""

import json
from datetime import UTC, datetime

import pytest

from consumers.errors import PermanentError
from consumers.index.events import Action, action_for, file_event
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


def _envelope(payload: object, event_type: str = "file.created", object_id: str | None = None) -> Envelope:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return Envelope(
        event_id="evt-1",
        provider="fastio",
        event_type=event_type,
        workspace_id="ws-1",
        payload=body,
        received_at=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        object_id=object_id,
        occurred_at=datetime(2026, 1, 1, 11, 59, tzinfo=UTC),
    )


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
