"""What one event means for the file index: the pure mapping from an envelope to a `FileEvent`.

Event names map to an action whichever spelling arrives (`workspace_storage_file_added`,
`file.created`, `file.uploaded`, `…_updated`, `file.modified`, `…_deleted`, `file.deleted`):
see `action_for`. Name, path and size come from wherever the provider put them (`payload`).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import Enum

from consumers import payload
from consumers.errors import PermanentError
from schemas.codec import Envelope


class Action(Enum):
    UPSERT = "upsert"
    REMOVE = "remove"


_VERBS = {
    "added": Action.UPSERT,
    "created": Action.UPSERT,
    "uploaded": Action.UPSERT,
    "updated": Action.UPSERT,
    "modified": Action.UPSERT,
    "changed": Action.UPSERT,
    "deleted": Action.REMOVE,
    "removed": Action.REMOVE,
}


@functools.lru_cache(maxsize=1024)  # a topic carries few event names: split each once, not per record
def action_for(event_type: str) -> Action | None:
    """What an event name means for the index, or None when it is not about a file.

    A name is about a file when one of its words is "file" and its last word is a known verb:
    `workspace_storage_file_added`, `share_storage_file_deleted`, `file.uploaded`, `File.Modified`.
    """
    words = re.split(r"[._\-:/ ]+", event_type.strip().lower())
    if "file" not in words[:-1]:
        return None
    return _VERBS.get(words[-1])


@dataclass(frozen=True)
class FileEvent:
    """What one event says about one file."""

    workspace_id: str
    object_id: str
    action: Action
    name: str | None
    path: str | None
    size: int | None
    event_time_ms: int
    received_at_ms: int
    event_type: str
    event_id: str


def file_event(envelope: Envelope) -> FileEvent | None:
    """The file fact in `envelope`, None when the event is not about a file.

    Raises PermanentError for a file event that cannot be indexed (no JSON, no object id).
    """
    action = action_for(envelope.event_type)
    if action is None:
        return None
    fields = payload.parse(envelope.payload)
    if fields is None:
        raise PermanentError(f"{envelope.event_type} payload is not a JSON object")
    object_id = envelope.object_id or payload.object_id(fields)
    if not object_id:
        raise PermanentError(f"{envelope.event_type} names no object_id, so the file cannot be indexed")
    name, path, size = payload.lookup_many(fields, (payload.NAME_KEYS, payload.PATH_KEYS, payload.SIZE_KEYS))
    received_ms = int(envelope.received_at.timestamp() * 1000)
    occurred_ms = int(envelope.occurred_at.timestamp() * 1000) if envelope.occurred_at else received_ms
    return FileEvent(
        workspace_id=envelope.workspace_id or envelope.partition_key,
        object_id=str(object_id),
        action=action,
        name=str(name) if name is not None else None,
        path=str(path) if path is not None else None,
        size=_whole_number(size),
        event_time_ms=occurred_ms,
        received_at_ms=received_ms,
        event_type=envelope.event_type,
        event_id=envelope.event_id,
    )


def _whole_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        try:
            size = int(value)
        except (OverflowError, ValueError):  # inf, nan
            return None
        return size if 0 <= size < 1 << 63 else None  # beyond a 64-bit column is no real size
    return None
