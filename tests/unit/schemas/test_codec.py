import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro
import pytest
from fastavro.utils import generate_many

from hookstream.errors import SchemaError
from schemas import codec


def make_envelope(**overrides: object) -> codec.Envelope:
    fields = {
        "event_id": "evt-1",
        "provider": "fastio",
        "event_type": "workspace_storage_file_added",
        "workspace_id": "ws-1",
        "payload": b'{"event_id":"evt-1","big":"\\u00e9"}',
        "received_at": datetime(2026, 11, 22, 12, 0, 0, 123000, tzinfo=UTC),
        "object_id": "file-9",
        "occurred_at": datetime(2026, 11, 22, 11, 59, 59, tzinfo=UTC),
        "signature_scheme": "hex",
    }
    return codec.Envelope(**{**fields, **overrides})  # type: ignore[arg-type]


def test_round_trip_keeps_every_field_and_the_payload_bytes() -> None:
    envelope = make_envelope()
    data = codec.encode(envelope)
    assert data[:2] == bytes((codec.MAGIC, codec.CURRENT_VERSION))
    assert codec.decode(data) == envelope


def test_nullable_fields_round_trip_as_none() -> None:
    envelope = make_envelope(object_id=None, occurred_at=None, signature_scheme=None)
    assert codec.decode(codec.encode(envelope)) == envelope


def test_a_provider_without_workspaces_writes_only_the_partition_key() -> None:
    envelope = make_envelope(provider="github", workspace_id=None, partition_key="delivery-7")
    decoded = codec.decode(codec.encode(envelope))
    assert (decoded.workspace_id, decoded.partition_key) == (None, "delivery-7")


def test_the_partition_key_defaults_to_the_workspace() -> None:
    assert make_envelope(workspace_id="ws-9").partition_key == "ws-9"
    assert make_envelope(workspace_id="ws-9", partition_key="other").partition_key == "other"


def test_a_v2_record_reads_its_workspace_id_as_the_partition_key() -> None:
    v2 = codec.encode(make_envelope(workspace_id="ws-old"), version=2)
    decoded = codec.decode(v2)
    assert (decoded.schema_version, decoded.workspace_id, decoded.partition_key) == (2, "ws-old", "ws-old")


def test_headers_name_the_event_without_decoding() -> None:
    headers = dict(make_envelope().headers())
    assert headers == {
        "event_id": b"evt-1",
        "event_type": b"workspace_storage_file_added",
        "provider": b"fastio",
        "schema_version": str(codec.CURRENT_VERSION).encode(),
    }


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "magic"),
        (b"", "magic"),
        (b"\x00\x00\x00\x00\x01abc", "magic"),  # Confluent wire format is not ours
        (bytes((codec.MAGIC, 99)) + b"\x00", "version 99 is unknown"),
        (codec.encode(make_envelope())[:-5], "not valid Avro"),
        (codec.encode(make_envelope()) + b"\x00", "trailing"),
    ],
)
def test_bad_bytes_are_schema_errors(data: bytes | None, reason: str) -> None:
    with pytest.raises(SchemaError, match=reason):
        codec.decode(data)


def test_encode_refuses_an_unknown_version() -> None:
    with pytest.raises(SchemaError, match="no envelope schema version 42"):
        codec.encode(make_envelope(), version=42)


def test_a_record_without_event_id_is_rejected() -> None:
    with pytest.raises(SchemaError, match="no event_id"):
        codec.decode(codec.encode(make_envelope(event_id="")))


def test_versions_are_numbered_without_gaps() -> None:
    versions = sorted(codec.schema_versions())
    assert versions == list(range(1, len(versions) + 1))


@pytest.mark.parametrize("version", sorted(codec.schema_versions())[1:])
def test_each_version_reads_records_written_with_the_previous_one(version: int) -> None:
    """Backward compatibility: a consumer upgraded to `version` still reads what producers
    on `version - 1` wrote, for random records covering every field and union branch."""
    old, new = codec.schema_versions()[version - 1], codec.schema_versions()[version]
    for record in generate_many(old, 200):
        record["schema_version"] = version - 1
        data = bytes((codec.MAGIC, version - 1)) + _schemaless(old, record)
        decoded = codec.decode(data)
        for name, value in record.items():
            assert _raw(getattr(decoded, name)) == value, name
        new_fields = {f["name"] for f in new["fields"]} - {f["name"] for f in old["fields"]}
        for name in new_fields:
            default = next(f for f in new["fields"] if f["name"] == name)["default"]
            # Before v3 the workspace_id field held the partition key, so that is what it reads as.
            expected = record["workspace_id"] if name == "partition_key" and default == "" else default
            assert getattr(decoded, name) == expected, name


def _raw(value: object) -> object:
    """A decoded timestamp back to the epoch milliseconds the generator wrote."""
    if isinstance(value, datetime):
        return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    return value


def _schemaless(schema: Any, record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, record)
    return out.getvalue()


def test_a_body_that_is_not_a_record_is_a_schema_error_not_a_crash() -> None:
    """A registry id may name any schema (someone registered a plain string under the subject)."""
    body = _schemaless("string", "just text")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="not a record"):
        codec.read_body(body, 0, fastavro.parse_schema("string"), None, "(registry schema id 9)")


# The wire format byte for byte: a small envelope, every Avro field spelled out (zigzag varints,
# union branch indexes, length-prefixed strings), so a change to the framing or a field shows.
SMALL = {
    "event_id": "e1",
    "provider": "p",
    "event_type": "t",
    "workspace_id": "w",
    "payload": b"{}",
    "received_at": datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC),  # 1 ms after the epoch
}
STRINGS = (
    b"\x04e1"  # event_id: length 2, then the bytes
    + b"\x02p"  # provider
    + b"\x02t"  # event_type
)
TAIL = (
    b"\x00"  # object_id: union branch 0, null
    + b"\x00"  # occurred_at: null
    + b"\x02"  # received_at: 1 ms
    + b"\x04{}"  # payload: the body as it came
)
# Framing b"H" + version, then the body: schema_version (zigzag: 1 -> 2, 2 -> 4, 3 -> 6) ...
V1_BYTES = b"H\x01" + b"\x02" + STRINGS + b"\x02w" + TAIL
V2_BYTES = b"H\x02" + b"\x04" + STRINGS + b"\x02w" + TAIL + b"\x00"  # + signature_scheme null
# v3: workspace_id is a union (branch 1, string); partition_key comes last.
V3_BYTES = b"H\x03" + b"\x06" + STRINGS + b"\x02\x02w" + TAIL + b"\x00" + b"\x02w"


def test_the_framing_is_the_letter_h_then_the_version() -> None:
    assert codec.encode(make_envelope())[:2] == b"H" + bytes((codec.CURRENT_VERSION,))


@pytest.mark.parametrize(("version", "data"), [(1, V1_BYTES), (2, V2_BYTES), (3, V3_BYTES)])
def test_each_version_writes_exactly_these_bytes(version: int, data: bytes) -> None:
    """The body carries the version it was written with, not the envelope's own field."""
    assert codec.encode(codec.Envelope(**SMALL), version=version) == data  # type: ignore[arg-type]


@pytest.mark.parametrize(("version", "data"), [(1, V1_BYTES), (2, V2_BYTES), (3, V3_BYTES)])
def test_each_version_decodes_from_exactly_these_bytes(version: int, data: bytes) -> None:
    expected = codec.Envelope(**SMALL, schema_version=version)  # type: ignore[arg-type]
    assert codec.decode(data) == expected
    assert (expected.signature_scheme, expected.partition_key) == (None, "w")


def test_an_envelope_of_only_the_required_fields_has_the_schema_defaults() -> None:
    envelope = codec.Envelope(**{**SMALL, "workspace_id": None})  # type: ignore[arg-type]
    assert (envelope.object_id, envelope.occurred_at, envelope.signature_scheme) == (None, None, None)
    assert (envelope.partition_key, envelope.schema_version) == ("", codec.CURRENT_VERSION)
    assert codec.decode(codec.encode(envelope)) == envelope


def test_the_envelope_is_immutable() -> None:
    envelope = make_envelope()
    with pytest.raises(dataclasses.FrozenInstanceError):
        envelope.event_id = "evt-2"  # type: ignore[misc]


@pytest.mark.parametrize("extra", [1, 2, 7])
def test_trailing_bytes_are_refused_with_their_count(extra: int) -> None:
    with pytest.raises(SchemaError, match=f"envelope has {extra} trailing bytes"):
        codec.decode(V3_BYTES + b"\x00" * extra)


def test_a_truncated_body_names_the_version_it_claims() -> None:
    with pytest.raises(SchemaError, match="not valid Avro v2: "):
        codec.decode(V2_BYTES[:-3])


def test_only_older_writers_are_resolved_the_newest_is_read_as_written(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Resolution costs; the newest version needs none (`reader` None), older ones always do."""
    readers: list[Any] = []
    read_body = codec.read_body

    def spy(data: bytes, start: int, writer: Any, reader: Any, label: str) -> dict[str, Any]:
        readers.append(reader)
        return read_body(data, start, writer, reader, label)

    monkeypatch.setattr(codec, "read_body", spy)
    codec.decode(V3_BYTES)
    codec.decode(V2_BYTES)
    codec.decode(V1_BYTES)
    newest = codec.schema_versions()[codec.CURRENT_VERSION]
    assert readers == [None, newest, newest]


def test_an_older_writer_is_read_through_resolution_into_the_newest_schema(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every field added so far has the dataclass's default, so resolution shows only when a type
    changes: a writer that had `payload` as a string is promoted to the newest reader's bytes."""
    old = json.loads(resources.files("schemas").joinpath("envelope.v1.avsc").read_text())
    next(f for f in old["fields"] if f["name"] == "payload")["type"] = "string"
    versions = {**codec.schema_versions(), 0: fastavro.parse_schema(old)}
    monkeypatch.setattr(codec, "schema_versions", lambda: versions)
    decoded = codec.decode(b"H\x00" + b"\x00" + STRINGS + b"\x02w" + TAIL)
    assert decoded.payload == b"{}"
    assert decoded == codec.Envelope(**SMALL, schema_version=0)  # type: ignore[arg-type]


def test_the_schemas_are_parsed_once_not_per_record() -> None:
    assert codec.schema_versions() is codec.schema_versions()


def test_only_envelope_v_n_avsc_files_are_versions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Another schema in the folder (a key schema) or a copy of a version is not a version."""
    v1 = resources.files("schemas").joinpath("envelope.v1.avsc").read_text()
    (tmp_path / "envelope.v1.avsc").write_text(v1)
    (tmp_path / "key.avsc").write_text('"string"')
    (tmp_path / "envelope.v2.avsc.orig").write_text(v1)
    monkeypatch.setattr(codec.resources, "files", lambda package: tmp_path)
    assert list(codec.schema_versions.__wrapped__()) == [1]
