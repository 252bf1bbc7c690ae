"""What an archive object holds and what it is called.

A record is the newest envelope schema plus `kafka_partition` and `kafka_offset`. An object's
key comes from Kafka positions only, so a member that redoes the work writes the same key:

    <prefix><topic>/dt=YYYY-MM-DD/hour=HH/<topic>+<partition>+<first offset, 20 digits>.avro

The date and hour are those of the first record's Kafka timestamp (UTC), never the clock's.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from schemas.codec import CURRENT_VERSION

POSITION_FIELDS = [
    {"name": "kafka_partition", "type": "int", "default": -1, "doc": "Partition of the events topic."},
    {"name": "kafka_offset", "type": "long", "default": -1, "doc": "Offset in that partition."},
]

_KEY = re.compile(
    r"(?:^|/)(?P<topic>[^/]+)/dt=\d{4}-\d{2}-\d{2}/hour=\d{2}/(?P=topic)\+(?P<partition>\d+)\+(?P<offset>\d{20})\.avro$"
)


_HOUR_MS = 3_600_000


def archive_schema() -> dict[str, Any]:
    """The newest envelope schema with the record's Kafka position appended."""
    text = resources.files("schemas").joinpath(f"envelope.v{CURRENT_VERSION}.avsc").read_text()
    schema: dict[str, Any] = json.loads(text)
    schema["fields"] = [*schema["fields"], *POSITION_FIELDS]
    return schema


def hour_of(timestamp_ms: int) -> str:
    """`dt=YYYY-MM-DD/hour=HH` of a Kafka timestamp."""
    return f"{datetime.fromtimestamp(timestamp_ms / 1000, UTC):dt=%Y-%m-%d/hour=%H}"


def object_key(topic: str, partition: int, first_offset: int, first_timestamp_ms: int) -> str:
    """The key of the object whose first record is at (`partition`, `first_offset`), under the prefix."""
    return f"{topic}/{hour_of(first_timestamp_ms)}/{topic}+{partition}+{first_offset:020d}.avro"


@dataclass(frozen=True)
class KeyPosition:
    topic: str
    partition: int
    first_offset: int


def parse_key(key: str) -> KeyPosition | None:
    """Where an object starts, read from its key; None for a key that is not an archive object."""
    match = _KEY.search(key)
    if match is None:
        return None
    return KeyPosition(match["topic"], int(match["partition"]), int(match["offset"]))


@dataclass(frozen=True)
class RollPolicy:
    """When the open object of a partition is closed before the next record joins it.

    Every rule reads the records only (their encoded size, their Kafka timestamps), so a redo
    from the same first offset closes the object at the same record.
    """

    max_bytes: int
    max_age_ms: int

    def rolls_before(self, first_timestamp_ms: int, size: int, timestamp_ms: int) -> bool:
        return (
            size >= self.max_bytes
            or timestamp_ms - first_timestamp_ms >= self.max_age_ms
            # UTC hours are whole hours of the epoch.
            or timestamp_ms // _HOUR_MS != first_timestamp_ms // _HOUR_MS
        )
