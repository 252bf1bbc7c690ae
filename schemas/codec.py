"""The event contract on the wire: an Avro envelope with a two-byte version prefix.

Every record value is `b"H" + bytes([version]) + <schemaless Avro body>`. The prefix names
the writer's schema, so a consumer reads any version kept in this folder through Avro schema
resolution into the newest one it knows. A version it does not know is a `SchemaError`,
which the consumer runtime treats as poison (DLQ), never as a crash.
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
    workspace_id: str
    payload: bytes
    received_at: datetime
    object_id: str | None = None
    occurred_at: datetime | None = None
    signature_scheme: str | None = None
    schema_version: int = CURRENT_VERSION

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


def encode(envelope: Envelope, version: int = CURRENT_VERSION) -> bytes:
    """Write `envelope` with schema `version` (the newest unless a test asks otherwise)."""
    schema = schema_versions().get(version)
    if schema is None:
        raise SchemaError(f"no envelope schema version {version} in schemas/")
    # vars(), not asdict(): asdict deep-copies every field, five times the cost on the hot path.
    record = {**vars(envelope), "schema_version": version}
    out = io.BytesIO()
    out.write(bytes((MAGIC, version)))
    try:
        fastavro.schemaless_writer(out, schema, record)
    except (ValueError, TypeError, KeyError) as exc:
        raise SchemaError(f"envelope {envelope.event_id!r} does not fit schema v{version}") from exc
    return out.getvalue()


def decode(data: bytes | None) -> Envelope:
    """Read a record written with any known version, resolved into the newest one."""
    if not data or len(data) < 3 or data[0] != MAGIC:
        raise SchemaError("not a Hookstream envelope (missing or wrong magic byte)")
    writer = schema_versions().get(data[1])
    if writer is None:
        raise SchemaError(
            f"envelope schema version {data[1]} is unknown here (newest known: {CURRENT_VERSION})"
        )
    stream = io.BytesIO(data)
    stream.seek(2)
    # Resolution only for older writers: the newest version reads as it is, much faster.
    reader = schema_versions()[CURRENT_VERSION] if data[1] != CURRENT_VERSION else None
    try:
        record = fastavro.schemaless_reader(stream, writer, reader)
    except Exception as exc:  # fastavro raises many types for truncated or corrupt input
        raise SchemaError(f"envelope body is not valid Avro v{data[1]}: {exc}") from exc
    if stream.tell() != len(data):
        raise SchemaError(f"envelope has {len(data) - stream.tell()} trailing bytes")
    if not isinstance(record, dict) or not record.get("event_id"):
        raise SchemaError("envelope has no event_id")
    # Keep the version it was written with: consumers may care, and it is the truth.
    record["schema_version"] = data[1]
    return Envelope(**record)


def utc_now() -> datetime:
    return datetime.now(UTC)
