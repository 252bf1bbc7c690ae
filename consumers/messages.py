"""Typed access to a consumed record's fields.

confluent-kafka types every accessor of `Message` as optional, because an error event is a
`Message` too; for a record whose `error()` is None the position is always set.
"""

from __future__ import annotations

from confluent_kafka import Message

Headers = list[tuple[str, bytes]]


def position(msg: Message) -> tuple[str, int, int]:
    """Topic, partition and offset of a record (not of an error event)."""
    return msg.topic(), msg.partition(), msg.offset()  # type: ignore[return-value]


def headers(msg: Message) -> Headers:
    """The record's headers as (name, bytes) pairs; a header without a value reads as b""."""
    found = msg.headers() or []
    pairs = found.items() if isinstance(found, dict) else found
    return [(name, value.encode() if isinstance(value, str) else value or b"") for name, value in pairs]
