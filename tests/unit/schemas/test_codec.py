import io
from datetime import UTC, datetime, timedelta
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
