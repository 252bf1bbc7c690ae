"""The archiver group: every event in Avro objects, each Kafka record in exactly one object.

Records stay in memory, one open object per partition, until the object rolls (see
`RollPolicy`); `pre_commit` then uploads it and vouches only for the offsets before the first
record still held, so the runtime never commits a record that is not stored. An object's key is
its first record's position, and each upload is committed before the partition's next one:
whoever redoes the work after a crash or a rebalance resumes at that key and replaces the
object there, never adding one beside it. See docs/consumers.md for the roll points chosen.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import Any

import fastavro

from consumers.archive.container import OpenObject, datum
from consumers.archive.layout import RollPolicy, archive_schema, object_key
from consumers.archive.storage import Storage, open_storage
from consumers.errors import TransientError, is_transient
from consumers.handler import Handler, Record
from consumers.metrics import ARCHIVE_UPLOADS
from hookstream.errors import StateStoreUnavailable
from hookstream.settings import Settings
from hookstream.state import StateStore, open_store, state_key

log = logging.getLogger("hookstream.consumers")

# Fast.io retries a delivery for up to 24 h: a second copy of an event arrives within that horizon.
EVENT_ID_WINDOW_S = 26 * 3600
# Rolled objects a partition may hold while the store is unreachable before the member stops
# taking records (memory is the limit: each is up to HOOKSTREAM_ARCHIVE_MAX_BYTES).
MAX_WAITING_PER_PARTITION = 4


def _escaped(part: str) -> str:
    """A key part as `state_key` escapes it; event_ids rarely hold either character."""
    return part.replace("%", "%25").replace(":", "%3A") if ("%" in part or ":" in part) else part


class Archiver(Handler):
    holds_records = True

    def __init__(
        self, settings: Settings, storage: Storage | None = None, store: StateStore | None = None
    ) -> None:
        self._storage = storage or open_storage(settings)
        self._store = store or open_store(settings)
        self._group = "archiver"
        self._topic = settings.topic
        self._policy = RollPolicy(settings.archive_max_bytes, int(settings.archive_max_age_s * 1000))
        self._idle_s = settings.archive_max_age_s
        self._schema: Any = fastavro.parse_schema(archive_schema())
        self._open: dict[int, OpenObject] = {}
        self._rolled: dict[int, deque[OpenObject]] = {}
        # Every claim's key is this prefix and the event_id (state_key's form, built once).
        self._key_prefix = state_key(self._topic, "archived", "", group=self._group)
        # (partition, offset) -> archive it? Decided for the whole batch in one round trip.
        self._first_copies: dict[tuple[int, int], bool] = {}
        for result in ("ok", "failed"):  # both series from the start: rate() sees the first failure
            ARCHIVE_UPLOADS.labels(result)

    # -- records in ----------------------------------------------------------------------------

    def start_batch(self, records: list[Record]) -> None:
        try:
            self._first_copies = self._claim(records)
        except TransientError:
            self._first_copies = {}  # each `handle` claims its own record, and raises its own error

    def handle(self, record: Record) -> None:
        position = (record.partition, record.offset)
        first = self._first_copies.pop(position, None)
        if first is None:
            first = self._claim([record])[position]
        if not first:
            return
        partition = record.partition
        current = self._open.get(partition)
        if current is not None and self._policy.rolls_before(
            current.first_timestamp_ms, current.size, record.timestamp_ms
        ):
            self._roll(partition)
            current = None
        if current is None:
            key = object_key(self._topic, partition, record.offset, record.timestamp_ms)
            current = self._open[partition] = OpenObject(key, record)
        current.add(record.offset, datum(record, self._schema))

    def _claim(self, records: list[Record]) -> dict[tuple[int, int], bool]:
        """Whether each record is the first Kafka copy of its event (False for a second copy of an
        archived event). The store keeps the position of the copy archived, so a redo of that
        very record (after a crash or a rebalance) is archived again, as it must be."""
        keys = [self._key_prefix + _escaped(r.envelope.event_id) for r in records]
        positions = [f"{r.partition}:{r.offset}" for r in records]
        try:
            added = self._store.add_many(keys, EVENT_ID_WINDOW_S, positions)
            first = [
                new or self._store.get(key) == position
                for new, key, position in zip(added, keys, positions, strict=True)
            ]
        except StateStoreUnavailable as exc:
            raise TransientError(str(exc)) from exc
        return {(r.partition, r.offset): keep for r, keep in zip(records, first, strict=True)}

    def _roll(self, partition: int) -> None:
        self._rolled.setdefault(partition, deque()).append(self._open.pop(partition))

    # -- what is durable -----------------------------------------------------------------------

    def pre_commit(self, processed: dict[int, int]) -> dict[int, int]:
        # An object open longer than the age limit on the clock (a quiet partition) is cut here.
        # Unlike a roll, a redo may cut elsewhere; that is safe because the runtime commits each
        # upload before the partition's next one, so a redo starts at this very key and replaces it.
        now = time.monotonic()
        for partition in [p for p, o in self._open.items() if now - o.opened >= self._idle_s]:
            self._roll(partition)
        uploads = [self._upload_oldest(partition) for partition in list(self._rolled)]
        if False in uploads and True not in uploads and self._backlog() >= MAX_WAITING_PER_PARTITION:
            # The store is down and memory fills up: stop taking records (the runtime retries this
            # call with backoff, then stops the member, whose successor redoes the work).
            raise TransientError(f"{self._backlog()} archive objects of one partition wait for upload")
        durable: dict[int, int] = {}
        for partition, next_offset in processed.items():
            waiting = self._rolled.get(partition)
            held = waiting[0] if waiting else self._open.get(partition)
            durable[partition] = next_offset if held is None else held.first_offset
        return durable

    def _backlog(self) -> int:
        return max((len(waiting) for waiting in self._rolled.values()), default=0)

    def _upload_oldest(self, partition: int) -> bool:
        """Upload a partition's oldest rolled object. One per call, and a raise only before any
        upload succeeded: each object's offsets are committed before the partition's next upload."""
        waiting = self._rolled[partition]
        obj = waiting[0]
        try:
            self._storage.put(obj.key, obj.encode(self._schema))
        except Exception as exc:
            if not is_transient(exc):
                raise
            ARCHIVE_UPLOADS.labels("failed").inc()
            # Kept, and tried again on the next call: the partition's offsets stay where they are.
            log.warning(
                "archive upload failed, will retry",
                extra={"fields": {"key": obj.key, "to": self._storage.name, "error": str(exc)}},
            )
            return False
        ARCHIVE_UPLOADS.labels("ok").inc()
        waiting.popleft()
        if not waiting:
            del self._rolled[partition]
        return True

    def revoked(self, partitions: list[int]) -> None:
        # What was not uploaded is abandoned: the new owner resumes at the committed offset,
        # which is the first offset of the oldest object dropped here, and writes the same key.
        for partition in partitions:
            self._open.pop(partition, None)
            self._rolled.pop(partition, None)

    def close(self) -> None:
        self._open.clear()
        self._rolled.clear()
        self._store.close()
