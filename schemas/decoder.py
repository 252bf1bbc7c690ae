"""How a consumer reads a record value: `build_decoder(settings).decode(value)`.

The first byte says the framing. `0`: the Confluent wire format, a 4-byte registry id, then
Avro: the writer's schema is fetched by id once, parsed once, and resolved into the newest
local envelope schema (no resolution at all when the writer is that schema). `b"H"`:
Hookstream's own framing (`schemas.codec`), so a topic written before the switch keeps flowing.

An id the registry says does not exist is a `SchemaError` (poison: the DLQ). A registry that
cannot be reached is `SchemaRegistryUnavailable` (transient: retry), never poison.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient
from fastavro.schema import to_parsing_canonical_form

from hookstream.errors import SchemaError
from hookstream.settings import Settings
from schemas import codec, registry

CONFLUENT_MAGIC = 0
_HEADER = 5  # magic byte + 4-byte big-endian schema id
# How long an id the registry denied stays denied without asking again: a poison storm of
# unknown ids costs one registry call per id and minute, not one per record.
UNKNOWN_ID_TTL_S = 60.0


@dataclass(frozen=True)
class _Writer:
    """A registry schema, parsed, with the reader to resolve it into (None: read as written)."""

    schema: Any
    reader: Any
    label: str


class Decoder:
    """Reads both framings; the Confluent one only with a registry client."""

    def __init__(self, client: SchemaRegistryClient | None) -> None:
        self._client = client
        self._writers: dict[int, _Writer] = {}
        self._unknown: dict[int, tuple[float, str]] = {}  # id -> (ask again after, the registry's words)
        self._newest = codec.schema_versions()[codec.CURRENT_VERSION]
        self._newest_form = to_parsing_canonical_form(self._newest)

    def decode(self, value: bytes | None) -> codec.Envelope:
        if not value or value[0] != CONFLUENT_MAGIC:
            return codec.decode(value)
        if len(value) <= _HEADER:
            raise SchemaError("record too short for the Confluent wire format")
        schema_id = int.from_bytes(value[1:_HEADER], "big")
        writer = self._writers.get(schema_id) or self._fetch(schema_id)
        record = codec.read_body(value, _HEADER, writer.schema, writer.reader, writer.label)
        return codec.envelope_from(record)

    def _fetch(self, schema_id: int) -> _Writer:
        client = self._client
        if client is None:
            raise SchemaError(
                f"record in the Confluent wire format (schema id {schema_id}) but no schema registry "
                "is configured: set HOOKSTREAM_SCHEMA_REGISTRY_URL, then replay it from the DLQ"
            )
        denied = self._unknown.get(schema_id)
        if denied is not None and time.monotonic() < denied[0]:
            raise SchemaError(f"schema id {schema_id} does not exist in the registry: {denied[1]}")
        answer = registry.call(f"fetch schema id {schema_id}", lambda: client.get_schema(schema_id))
        if isinstance(answer, registry.RegistryAnswer):
            self._unknown[schema_id] = (time.monotonic() + UNKNOWN_ID_TTL_S, answer.message)
            raise SchemaError(f"schema id {schema_id} does not exist in the registry: {answer.message}")
        try:
            parsed = fastavro.parse_schema(json.loads(answer.schema_str or ""))
        except (ValueError, TypeError, KeyError) as exc:
            raise SchemaError(f"schema id {schema_id} is not an Avro schema: {exc}") from exc
        # The writer is the newest local schema almost always: read without resolution, faster.
        same = to_parsing_canonical_form(parsed) == self._newest_form
        writer = _Writer(parsed, None if same else self._newest, f"(registry schema id {schema_id})")
        self._writers[schema_id] = writer
        return writer


def build_decoder(settings: Settings) -> Decoder:
    """A decoder of both framings, with the registry's client when a registry URL is set."""
    return Decoder(registry.client(settings) if settings.schema_registry_url else None)
