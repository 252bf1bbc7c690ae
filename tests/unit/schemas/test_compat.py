import copy
import json
from importlib import resources
from typing import Any

import pytest

from schemas import codec
from schemas.compat import for_rule, unreadable


def envelope(version: int) -> Any:
    return json.loads(resources.files("schemas").joinpath(f"envelope.v{version}.avsc").read_text())


def with_field(schema: Any, **field: Any) -> Any:
    changed = copy.deepcopy(schema)
    changed["fields"].append(field)
    return changed


def test_every_local_version_reads_the_one_before() -> None:
    for version in sorted(codec.schema_versions())[1:]:
        assert unreadable(envelope(version), envelope(version - 1)) == []


def test_v3_is_not_forward_compatible_because_workspace_id_may_be_null() -> None:
    assert unreadable(envelope(2), envelope(3)) == [
        "field `workspace_id`: a written null cannot be read as string"
    ]


def test_a_new_field_without_default_is_named() -> None:
    new = with_field(envelope(3), name="tenant", type="string")
    assert for_rule("BACKWARD", new, envelope(3)) == [
        "field `tenant` is new and has no default (new readers cannot read old records)"
    ]
    assert for_rule("FORWARD", new, envelope(3)) == []  # old readers skip it


def test_a_new_field_with_default_passes_every_rule() -> None:
    new = with_field(envelope(3), name="tenant", type=["null", "string"], default=None)
    for rule in ("BACKWARD", "FORWARD", "FULL", "BACKWARD_TRANSITIVE", "FULL_TRANSITIVE", "NONE"):
        assert for_rule(rule, new, envelope(3)) == [], rule


@pytest.mark.parametrize(
    ("writer", "reader", "readable"),
    [
        ("int", "long", True),
        ("long", "double", True),
        ("float", "double", True),
        ("string", "bytes", True),
        ("bytes", "string", True),
        ("long", "int", False),
        ("double", "float", False),
        ("string", "int", False),
        ("string", ["null", "string"], True),
        (["null", "string"], "string", False),
        (["null", "int"], ["null", "long"], True),
        ({"type": "long", "logicalType": "timestamp-millis"}, "long", True),
    ],
)
def test_type_changes_follow_avro_resolution(writer: Any, reader: Any, readable: bool) -> None:
    old = {"type": "record", "name": "R", "fields": [{"name": "f", "type": writer}]}
    new = {"type": "record", "name": "R", "fields": [{"name": "f", "type": reader}]}
    problems = unreadable(new, old)
    assert (problems == []) is readable, problems
    if not readable:
        assert problems[0].startswith("field `f`")


def test_nested_records_arrays_maps_and_enums_name_the_path() -> None:
    def schema(symbols: list[str], inner: str) -> Any:
        item = {"type": "record", "name": "Item", "fields": [{"name": "n", "type": inner}]}
        return {
            "type": "record",
            "name": "R",
            "fields": [
                {"name": "items", "type": {"type": "array", "items": item}},
                {
                    "name": "tags",
                    "type": {"type": "map", "values": {"type": "enum", "name": "T", "symbols": symbols}},
                },
                {"name": "again", "type": {"type": "array", "items": "Item"}},
            ],
        }

    problems = unreadable(schema(["A"], "string"), schema(["A", "B"], "long"))
    assert "field `items[].n`: a written long cannot be read as string" in problems
    assert "field `tags{}`: symbols ['B'] are unknown to the reader" in problems


def test_renamed_record_and_aliases() -> None:
    old = {"type": "record", "name": "R", "fields": [{"name": "old_name", "type": "string"}]}
    renamed = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "new_name", "type": "string", "aliases": ["old_name"]}],
    }
    assert unreadable(renamed, old) == []
    other = {"type": "record", "name": "S", "fields": []}
    assert unreadable(other, old) == ["the record: record S is not R"]
