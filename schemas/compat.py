"""Which fields make one Avro schema unable to read data written with another.

The registry says whether a schema is compatible; Apicurio's answer carries no reason. This
walks Avro's schema-resolution rules over the two schemas so a refused deploy names the field
(`hookstream schemas check`). The registry stays the judge: this only explains its verdict.
"""

from __future__ import annotations

from typing import Any

_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
# What a writer's type may be read as, besides itself (the Avro specification's promotions).
_PROMOTIONS = {
    "int": {"long", "float", "double"},
    "long": {"float", "double"},
    "float": {"double"},
    "string": {"bytes"},
    "bytes": {"string"},
}
_NAMED = {"record", "enum", "fixed"}


def unreadable(reader: Any, writer: Any) -> list[str]:
    """Why `reader` cannot read data written with `writer` (JSON schemas); empty when it can."""
    return _Walk().check(reader, writer, "")


def for_rule(rule: str, new: Any, old: Any) -> list[str]:
    """The problems of `new` against an `old` registered schema under a compatibility rule."""
    base = rule.removesuffix("_TRANSITIVE")
    found: list[str] = []
    if base in ("BACKWARD", "FULL"):
        found += [f"{p} (new readers cannot read old records)" for p in unreadable(new, old)]
    if base in ("FORWARD", "FULL"):
        found += [f"{p} (old readers cannot read new records)" for p in unreadable(old, new)]
    return found


class _Walk:
    def __init__(self) -> None:
        self.reader_names: dict[str, Any] = {}
        self.writer_names: dict[str, Any] = {}
        self.seen: set[tuple[str, str]] = set()

    def check(self, reader: Any, writer: Any, path: str) -> list[str]:
        reader = _resolve(reader, self.reader_names)
        writer = _resolve(writer, self.writer_names)
        if isinstance(writer, list):
            problems: list[str] = []
            for branch in writer:
                problems += self.check(reader, branch, path)
            return list(dict.fromkeys(problems))
        if isinstance(reader, list):
            if any(not self.check(branch, writer, path) for branch in reader):
                return []
            return [f"{_where(path)}: a written {_kind(writer)} is none of {[_kind(b) for b in reader]}"]
        r_kind, w_kind = _kind(reader), _kind(writer)
        if r_kind != w_kind and r_kind not in _PROMOTIONS.get(w_kind, set()):
            return [f"{_where(path)}: a written {w_kind} cannot be read as {r_kind}"]
        if r_kind in _NAMED and _short(reader.get("name", "")) != _short(writer.get("name", "")):
            return [f"{_where(path)}: {r_kind} {reader.get('name')} is not {writer.get('name')}"]
        if r_kind == "record":
            return self._record(reader, writer, path)
        if r_kind == "enum":
            missing = [s for s in writer["symbols"] if s not in reader["symbols"]]
            if missing and "default" not in reader:
                return [f"{_where(path)}: symbols {missing} are unknown to the reader"]
        if r_kind == "fixed" and reader.get("size") != writer.get("size"):
            return [f"{_where(path)}: fixed size {writer.get('size')} read as {reader.get('size')}"]
        if r_kind == "array":
            return self.check(reader["items"], writer["items"], f"{path}[]")
        if r_kind == "map":
            return self.check(reader["values"], writer["values"], f"{path}{{}}")
        return []

    def _record(self, reader: dict[str, Any], writer: dict[str, Any], path: str) -> list[str]:
        pair = (reader.get("name", ""), writer.get("name", ""))
        if pair in self.seen:  # a recursive type: its fields are being checked further up
            return []
        self.seen.add(pair)
        written = {f["name"]: f for f in writer.get("fields", [])}
        problems: list[str] = []
        for field in reader.get("fields", []):
            name = f"{path}.{field['name']}" if path else field["name"]
            source = next(
                (written[n] for n in (field["name"], *field.get("aliases", ())) if n in written), None
            )
            if source is not None:
                problems += self.check(field["type"], source["type"], name)
            elif "default" not in field:
                problems.append(f"field `{name}` is new and has no default")
        return problems


def _resolve(schema: Any, names: dict[str, Any]) -> Any:
    """The definition behind a named reference; records named types as they are met."""
    if isinstance(schema, str):
        return schema if schema in _PRIMITIVES else names.get(_short(schema), schema)
    if isinstance(schema, dict):
        if schema.get("type") in _NAMED and "name" in schema:
            names.setdefault(_short(schema["name"]), schema)
        if isinstance(schema.get("type"), str) and schema["type"] in _PRIMITIVES:
            return schema["type"]  # a primitive with a logical type reads as the primitive
    return schema


def _short(name: str) -> str:
    """A name without its namespace: resolution matches unqualified names."""
    return name.split(".")[-1]


def _kind(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, dict):
        return str(schema.get("type"))
    return "union"


def _where(path: str) -> str:
    return f"field `{path}`" if path else "the record"
