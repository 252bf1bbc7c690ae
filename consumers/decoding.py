"""Decode and poison: what each consumed record is to this group, before any handling.

A record is a `Record` (an envelope to handle), the `SchemaError` of a poison record (it breaks
the contract: straight to the DLQ), or None for a replayed DLQ record addressed to another group.
An unreachable schema registry is none of these: the decode is waited out, never dead-lettered.

Which group a replayed record is for is in its headers, and reading a record's headers builds
Python objects for all of them: a cost on every record for the rare replay. So only records that
may be replays are read: poison, and records whose Kafka timestamp is at least
`REPLAY_MIN_AGE_MS` after the envelope's `received_at`. The producer stamps a record about a second
at most after receiving it; `dlq replay` stamps each replay at least that long after the original
record's own timestamp (see `consumers.replay`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Message

from consumers.dlq import REPLAY_GROUP, REPLAY_MIN_AGE_MS
from consumers.handler import Record
from consumers.metrics import MemberMetrics
from consumers.retry import RetryPolicy
from hookstream.errors import SchemaError, SchemaRegistryUnavailable
from hookstream.settings import Settings
from schemas import codec
from schemas.decoder import build_decoder

log = logging.getLogger("hookstream.consumers")

TopicPartitionKey = tuple[str, int]
Outcome = Record | SchemaError | None
# Waits `seconds` for the record of that partition while the group keeps this member.
Wait = Callable[[float, TopicPartitionKey], None]


def _empty_field(envelope: codec.Envelope) -> SchemaError:
    """Why an envelope with an empty event_type, partition_key or provider is poison."""
    empty = [name for name in ("event_type", "partition_key", "provider") if not getattr(envelope, name)]
    return SchemaError(f"envelope {envelope.event_id!r} has an empty {empty[0]}")


class Decoder:
    def __init__(
        self, settings: Settings, group: str, retry: RetryPolicy, metrics: MemberMetrics, wait: Wait
    ) -> None:
        self._envelopes = build_decoder(settings)  # both framings; registry schemas cached per member
        self._group = group
        self._address = group.encode()
        self._retry = retry
        self._metrics = metrics
        self._wait = wait

    def outcome(self, msg: Message, key: TopicPartitionKey, offset: int) -> Outcome:
        """What the record at `key` (topic, partition) and `offset` is to this group."""
        value = msg.value() or b""
        try:
            try:  # the common case first, with no retry loop around it (it runs for every record)
                envelope = self._envelopes.decode(value)
            except SchemaRegistryUnavailable as exc:
                envelope = self._decode_waiting(key, value, exc)
            if not (envelope.event_type and envelope.partition_key and envelope.provider):
                raise _empty_field(envelope)
        except SchemaError as exc:
            return None if self._addressed_elsewhere(msg) else exc
        timestamp_ms = msg.timestamp()[1]
        may_be_replay = timestamp_ms - envelope.received_at.timestamp() * 1000 >= REPLAY_MIN_AGE_MS
        if may_be_replay and self._addressed_elsewhere(msg):
            return None
        return Record(envelope, key[0], key[1], offset, timestamp_ms, value)

    def _addressed_elsewhere(self, msg: Message) -> bool:
        """A replayed DLQ record is for the one group that failed it; the others skip it."""
        headers = msg.headers()
        if not isinstance(headers, list):  # None without headers; never a dict when consumed
            return False
        for name, value in headers:
            if name == REPLAY_GROUP:
                return value != self._address
        return False

    def _decode_waiting(
        self, key: TopicPartitionKey, value: bytes, error: SchemaRegistryUnavailable
    ) -> codec.Envelope:
        """Decode after a first attempt failed with `error`, waiting out the unreachable schema
        registry (paused, polling) for as long as it takes: a record the registry cannot vouch for
        yet is not poison."""
        attempt = 0
        while True:
            attempt += 1
            self._metrics.retries.inc()
            log.warning(
                "schema registry unavailable, retrying",
                extra={"fields": {"group": self._group, "attempt": attempt, "error": str(error)}},
            )
            self._wait(self._retry.outage_delay(attempt), key)
            try:
                return self._envelopes.decode(value)
            except SchemaRegistryUnavailable as exc:
                error = exc
