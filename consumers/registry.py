"""Consumer groups by name: `hookstream consume <name>` looks the name up here.

A group is a `Handler` subclass built from the settings. Built-in groups are listed in
`GROUPS` as "module:class" and imported only when run, so `consume notifier` never loads
the indexer. A platform team adds a group in a few lines, either with a line in `GROUPS`
or, from a package of its own, with an entry point in the `hookstream.groups` group:

    # pyproject.toml of the team's package
    [project.entry-points."hookstream.groups"]
    thumbnailer = "thumbs.group:Thumbnailer"
"""

from __future__ import annotations

import pkgutil
from collections.abc import Callable
from importlib.metadata import entry_points

from consumers.errors import UnknownGroupError
from consumers.handler import Handler
from hookstream.settings import Settings

HandlerFactory = Callable[[Settings], Handler]

GROUPS: dict[str, str] = {
    "indexer": "consumers.indexer:Indexer",
    "notifier": "consumers.notifier:Notifier",
    "archiver": "consumers.archiver:Archiver",
}
ENTRY_POINT_GROUP = "hookstream.groups"


def _installed() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def group_names() -> list[str]:
    return sorted({**_installed(), **GROUPS})


def load(name: str) -> HandlerFactory:
    """The factory of group `name`: call it with the settings to get the group's handler."""
    target = GROUPS.get(name) or _installed().get(name)
    if target is None:
        raise UnknownGroupError(f"no consumer group named {name!r}; known groups: {', '.join(group_names())}")
    factory: HandlerFactory = pkgutil.resolve_name(target)
    return factory
