"""The event contract on the wire: the envelope, and Hookstream's own two-byte framing.

A record value is either Hookstream's framing, `b"H" + bytes([version]) + <schemaless Avro>`,
where the prefix names the writer's schema kept in this folder, or the Confluent wire format
(`schemas.serializer`, `schemas.decoder`), where a registry id does. Either way a consumer
reads the record through Avro schema resolution into the newest version it knows. A version it
does not know is a `SchemaError`, which the consumer runtime treats as poison (DLQ), never as a
crash.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import fastavro

from hookstream.errors import SchemaError

MAGIC = 0x48  # "H": not 0x00, so a record in Confluent wire format is never misread as ours


@cache
def schema_versions() -> dict[int, Any]:
    """Every envelope schema kept in this package, parsed, by version number."""
    parsed: dict[int, Any] = {}
    for entry in resources.files("schemas").iterdir():
        name = entry.name
        if name.startswith("envelope.v") and name.endswith(".avsc"):
            version = int(name.removeprefix("envelope.v").removesuffix(".avsc"))
            parsed[version] = fastavro.parse_schema(json.loads(entry.read_text()))
    return parsed


CURRENT_VERSION = max(schema_versions())


@dataclass(frozen=True)
class Envelope:
    """One verified webhook delivery; `payload` is the request body byte for byte."""

    event_id: str
    provider: str
    event_type: str
    workspace_id: str | None  # Fast.io's workspace; None for providers without one
    payload: bytes
    received_at: datetime
    object_id: str | None = None
    occurred_at: datetime | None = None
    signature_scheme: str | None = None
    partition_key: str = ""  # the Kafka key; empty means the workspace_id (see __post_init__)
    schema_version: int = CURRENT_VERSION

    def __post_init__(self) -> None:
        # Before version 3 the workspace_id field held the key whatever it was: records of that
        # time (and callers that name only a workspace) get it as their partition key.
        if not self.partition_key and self.workspace_id:
            object.__setattr__(self, "partition_key", self.workspace_id)

    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka record headers: enough to route or filter without decoding the value."""
        return [
            ("event_id", self.event_id.encode()),
            ("event_type", self.event_type.encode()),
            ("provider", self.provider.encode()),
            ("schema_version", str(self.schema_version).encode()),
        ]

    def payload_json(self) -> Any:
        return json.loads(self.payload)


def as_record(envelope: Envelope, version: int = CURRENT_VERSION) -> dict[str, Any]:
    """The envelope as the Avro record of schema `version`."""
    # vars(), not asdict(): asdict deep-copies every field, five times the cost on the hot path.
    return {**vars(envelope), "schema_version": version}


def encode(envelope: Envelope, version: int = CURRENT_VERSION) -> bytes:
    """Write `envelope` with schema `version` (the newest unless a test asks otherwise)."""
    schema = schema_versions().get(version)
    if schema is None:
        raise SchemaError(f"no envelope schema version {version} in schemas/")
    out = io.BytesIO()
    out.write(bytes((MAGIC, version)))
    try:
        fastavro.schemaless_writer(out, schema, as_record(envelope, version))
    except (ValueError, TypeError, KeyError) as exc:
        raise SchemaError(f"envelope {envelope.event_id!r} does not fit schema v{version}") from exc
    return out.getvalue()


def decode(data: bytes | None) -> Envelope:
    """Read a record in Hookstream's framing written with any known version, resolved into the
    newest one."""
    if not data or len(data) < 3 or data[0] != MAGIC:
        raise SchemaError("not a Hookstream envelope (missing or wrong magic byte)")
    writer = schema_versions().get(data[1])
    if writer is None:
        raise SchemaError(
            f"envelope schema version {data[1]} is unknown here (newest known: {CURRENT_VERSION})"
        )
    # Resolution only for older writers: the newest version reads as it is, much faster.
    reader = schema_versions()[CURRENT_VERSION] if data[1] != CURRENT_VERSION else None
    record = read_body(data, 2, writer, reader, f"v{data[1]}")
    # Keep the version it was written with: consumers may care, and it is the truth.
    record["schema_version"] = data[1]
    return envelope_from(record)


def read_body(data: bytes, start: int, writer: Any, reader: Any, label: str) -> dict[str, Any]:
    """The Avro record in `data[start:]`, written with `writer` and read as `reader` (None: as
    written). Every byte must belong to it."""
    stream = io.BytesIO(data)
    stream.seek(start)
    try:
        record = fastavro.schemaless_reader(stream, writer, reader)
    except Exception as exc:  # fastavro raises many types for truncated or corrupt input
        raise SchemaError(f"envelope body is not valid Avro {label}: {exc}") from exc
    if stream.tell() != len(data):
        raise SchemaError(f"envelope has {len(data) - stream.tell()} trailing bytes")
    if not isinstance(record, dict):
        raise SchemaError(f"envelope body is not a record ({label})")
    return record


def envelope_from(record: dict[str, Any]) -> Envelope:
    """The envelope of a record read with the newest schema."""
    if not record.get("event_id"):
        raise SchemaError("envelope has no event_id")
    return Envelope(**record)


def utc_now() -> datetime:
    return datetime.now(UTC)
