"""One archive object being built: a partition's records, then their Avro container bytes.

The bytes depend on the records only: the sync marker is derived from the object's key and
the records are cut into blocks of a fixed count, so the same records give the same object.
"""

from __future__ import annotations

import hashlib
import io
import time
from dataclasses import dataclass
from typing import Any

import fastavro.write

from consumers.archive.layout import archive_schema
from consumers.handler import Record
from schemas.codec import CURRENT_VERSION, MAGIC

# zlib's fastest level: a fifth of the default level's time, for objects about a sixth larger.
DEFLATE_LEVEL = 1
BLOCK_RECORDS = 1000

# The header holds the schema as the writer is given it. Given parsed, its fields' keys would come in
# an order that depends on the process's string hash seed: the same records would give other bytes
# in another process.
_SCHEMA = archive_schema()

Block = tuple[int, bytes]  # a block's record count, and its records' Avro bytes end to end


@dataclass(frozen=True)
class _Block:
    # fastavro's write_block takes a block as block_reader yields it: a count and the encoded records.
    num_records: int
    bytes_: io.BytesIO


def _long(n: int) -> bytes:
    """Avro's encoding of an int or long: zigzag, then 7 bits a byte, low bits first."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def datum(record: Record, schema: Any) -> bytes:
    """The archive record's Avro bytes. An envelope in our own framing at the newest version is,
    byte for byte, the archive record's leading fields: the position is appended to it as it came
    from Kafka, with no re-encoding. Anything else is encoded from the decoded envelope."""
    value = record.value
    if len(value) > 2 and value[0] == MAGIC and value[1] == CURRENT_VERSION:
        return value[2:] + _long(record.partition) + _long(record.offset)
    out = io.BytesIO()
    fields = {**record.envelope.__dict__, "kafka_partition": record.partition, "kafka_offset": record.offset}
    fastavro.write.schemaless_writer(out, schema, fields)
    return out.getvalue()


class OpenObject:
    """The records of one partition's object so far, in offset order."""

    def __init__(self, key: str, first: Record) -> None:
        self.key = key
        self.first_offset = first.offset
        self.first_timestamp_ms = first.timestamp_ms
        self.last_offset = first.offset
        self.opened = time.monotonic()  # only to cut an idle object early (see the archiver)
        self.size = 0  # encoded record bytes, before compression: the size rule reads this
        self._datums: list[bytes] = []

    def add(self, offset: int, encoded: bytes) -> None:
        self._datums.append(encoded)
        self.size += len(encoded)
        self.last_offset = offset

    @property
    def count(self) -> int:
        return len(self._datums)

    def blocks(self) -> list[Block]:
        starts = range(0, len(self._datums), BLOCK_RECORDS)
        chunks = (self._datums[start : start + BLOCK_RECORDS] for start in starts)
        return [(len(chunk), b"".join(chunk)) for chunk in chunks]

    def encode(self) -> bytes:
        return container(self.key, self.blocks())


def container(key: str, blocks: list[Block]) -> bytes:
    """The object's bytes: an Avro container file (deflate) of these blocks, its sync marker
    derived from its key."""
    out = io.BytesIO()
    sync = hashlib.md5(key.encode(), usedforsecurity=False).digest()
    writer = fastavro.write.Writer(
        out, _SCHEMA, codec="deflate", compression_level=DEFLATE_LEVEL, sync_marker=sync
    )
    for count, data in blocks:
        writer.write_block(_Block(count, io.BytesIO(data)))
    writer.flush()
    return out.getvalue()
