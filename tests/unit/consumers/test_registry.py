import pytest

from consumers.errors import UnknownGroupError
from consumers.handler import Handler
from consumers.registry import GROUPS, group_names, load


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_every_built_in_group_loads_a_handler_class(name: str) -> None:
    factory = load(name)
    assert isinstance(factory, type) and issubclass(factory, Handler)


def test_an_unknown_group_names_the_known_ones() -> None:
    with pytest.raises(UnknownGroupError) as info:
        load("thumbnailer")
    assert (
        str(info.value) == f"no consumer group named 'thumbnailer'; known groups: {', '.join(group_names())}"
    )
    assert {"indexer", "notifier", "archiver"} <= set(group_names())
