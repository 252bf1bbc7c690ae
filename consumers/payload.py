"""Reading a file's fields out of a provider's JSON payload, whatever its shape.

Providers nest the file differently (`resource.name`, `data.name`, `data.file.name`, or a
flat `name`); groups ask for a field by its usual keys and get the most specific match.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

# Where providers put the file's own fields, most specific first; () is the payload itself.
_CONTAINERS = (("resource",), ("data", "file"), ("data", "object"), ("data",), ("file",), ())

NAME_KEYS = ("name", "filename", "file_name", "title")
PATH_KEYS = ("path", "full_path", "file_path")
SIZE_KEYS = ("size", "size_bytes", "bytes")
# A bare "id" counts only inside a container: at the top level it is usually the event's id.
NESTED_ID_KEYS = ("object_id", "file_id", "id")
TOP_ID_KEYS = ("object_id", "file_id")


def parse(raw: bytes) -> Mapping[str, Any] | None:
    """The payload as a JSON object, or None when it is not one."""
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, Mapping) else None


def _containers(payload: Mapping[str, Any], top_level: bool) -> Iterator[Mapping[str, Any]]:
    for path in _CONTAINERS:
        if not path and not top_level:
            continue
        node: Any = payload
        for step in path:
            node = node.get(step) if isinstance(node, Mapping) else None
        if isinstance(node, Mapping):
            yield node


def lookup(payload: Mapping[str, Any], keys: tuple[str, ...], top_level: bool = True) -> Any:
    """The first non-empty value under one of `keys`, most specific container first."""
    return lookup_many(payload, (keys,), top_level)[0]


def lookup_many(
    payload: Mapping[str, Any], fields: tuple[tuple[str, ...], ...], top_level: bool = True
) -> list[Any]:
    """`lookup` of each of `fields` (a tuple of keys each), in one walk over the containers:
    the indexer asks for three fields per event."""
    found: list[Any] = [None] * len(fields)
    missing = len(fields)
    for container in _containers(payload, top_level):
        for at, keys in enumerate(fields):
            if found[at] is not None:
                continue
            for key in keys:
                value = container.get(key)
                if value not in (None, ""):
                    found[at] = value
                    missing -= 1
                    break
        if not missing:
            break
    return found


def object_id(payload: Mapping[str, Any]) -> str | None:
    found = lookup(payload, TOP_ID_KEYS) or lookup(payload, NESTED_ID_KEYS, top_level=False)
    return str(found) if found else None


def file_name(payload: Mapping[str, Any]) -> str | None:
    found = lookup(payload, NAME_KEYS)
    return str(found) if found is not None else None
