"""The archiver group: every event in Avro objects, each Kafka record in exactly one object.

Records stay in memory, one open object per partition, until the object rolls (see
`RollPolicy`); `pre_commit` then uploads it and vouches only for the offsets before the first
record still held, so the runtime never commits a record that is not stored. An object's key is
its first record's position, and its roll points read only the records, so whoever redoes the
work after a crash or a rebalance, from any committed offset, rebuilds the same objects under
the same keys and replaces them, never adding one beside them. The one cut by the clock (an idle
partition) is committed before the partition's next upload, since a redo may not cut there.
See docs/consumers.md for the roll points chosen.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor, wait
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
# Batches whose event_id check failed a member may hold before it stops taking records.
MAX_UNCLAIMED_BATCHES = 8


def _escaped(part: str) -> str:
    """A key part as `state_key` escapes it; event_ids rarely hold either character."""
    return part.replace("%", "%25").replace(":", "%3A") if ("%" in part or ":" in part) else part


class _Handed:
    """The records one batch handed over, and the claim of their event_ids, running meanwhile."""

    def __init__(self, claim: Future[dict[tuple[int, int], bool]] | None) -> None:
        self.claim = claim
        self.records: list[Record] = []
        self.waited_a_batch = False  # a pre_commit ran since: settle it at the next one


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
        # An object cut by the clock was uploaded in this pre_commit: see must_commit_now.
        self._clock_cut_uploaded = False
        # Batches handed over and not archived yet, oldest first. Their claims run in a thread of
        # their own while the member decodes the next batch: SQLite runs a statement without the
        # GIL (and Redis is a socket wait), so the check costs the member's thread almost nothing.
        self._handed: deque[_Handed] = deque()
        self._claims = ThreadPoolExecutor(1, thread_name_prefix="archive-claims")
        # Each partition's oldest rolled object being deflated and uploaded, in a thread of its own.
        self._uploads = ThreadPoolExecutor(1, thread_name_prefix="archive-uploads")
        self._in_flight: dict[int, Future[None]] = {}
        for result in ("ok", "failed"):  # both series from the start: rate() sees the first failure
            ARCHIVE_UPLOADS.labels(result)

    # -- records in ----------------------------------------------------------------------------

    def start_batch(self, records: list[Record]) -> None:
        self._handed.append(_Handed(self._claims.submit(self._claim, records) if records else None))

    def handle(self, record: Record) -> None:
        if not self._handed:  # handed over without start_batch (a test, the bench): claimed later
            self._handed.append(_Handed(None))
        self._handed[-1].records.append(record)

    def _claim(self, records: list[Record]) -> dict[tuple[int, int], bool]:
        """Whether each record is the first Kafka copy of its event (False for a second copy of an
        archived event). The store keeps the position of the copy archived, so a redo of that
        very record (after a crash or a rebalance) is archived again, as it must be."""
        keys = [self._key_prefix + _escaped(r.envelope.event_id) for r in records]
        positions = [f"{r.partition}:{r.offset}" for r in records]
        try:
            held = self._store.claim_many(keys, EVENT_ID_WINDOW_S, positions)
        except StateStoreUnavailable as exc:
            raise TransientError(str(exc)) from exc
        return {(r.partition, r.offset): h == p for r, h, p in zip(records, held, positions, strict=True)}

    def _settle(self) -> None:
        """Archive the records of every batch whose claim had a whole batch to run in; those handed
        over since the last call wait for the next. A claim that failed (the store unreachable)
        is made again here; while it fails, its batch and every later one wait, offsets held."""
        while self._handed and self._handed[0].waited_a_batch:
            batch = self._handed[0]
            try:
                first = batch.claim.result() if batch.claim is not None else self._claim(batch.records)
            except TransientError as exc:
                batch.claim = None
                log.warning(
                    "event_id check failed, will retry",
                    extra={"fields": {"group": self._group, "store": self._store.name, "error": str(exc)}},
                )
                break
            for record in batch.records:
                if first[(record.partition, record.offset)]:
                    self._add(record)
            self._handed.popleft()
        for batch in self._handed:
            batch.waited_a_batch = True

    def _add(self, record: Record) -> None:
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

    def _roll(self, partition: int) -> None:
        self._rolled.setdefault(partition, deque()).append(self._open.pop(partition))

    # -- what is durable -----------------------------------------------------------------------

    def pre_commit(self, processed: dict[int, int]) -> dict[int, int]:
        # An object open longer than the age limit on the clock (a quiet partition) is cut here.
        # Unlike a roll, a redo may cut elsewhere; that is safe because its offsets are committed
        # before the partition's next upload (must_commit_now), so a redo starts at its key.
        self._clock_cut_uploaded = False
        self._settle()
        now = time.monotonic()
        for partition in [p for p, o in self._open.items() if now - o.opened >= self._idle_s]:
            self._open[partition].cut_by_clock = True
            self._roll(partition)
        finished = self._collect_uploads()
        for partition in self._rolled:
            # One upload per partition at a time, and none started in the call that saw the last one
            # finish: the runtime stores (and, after a cut by the clock, commits) its offsets first.
            if partition not in self._in_flight and partition not in finished:
                self._in_flight[partition] = self._uploads.submit(self._upload, self._rolled[partition][0])
        outcomes = finished.values()
        if False in outcomes and True not in outcomes and self._backlog() >= MAX_WAITING_PER_PARTITION:
            # The store is down and memory fills up: stop taking records (the runtime retries this
            # call with backoff, then stops the member, whose successor redoes the work).
            raise TransientError(f"{self._backlog()} archive objects of one partition wait for upload")
        if len(self._handed) > MAX_UNCLAIMED_BATCHES:
            # The same while the state store is down.
            raise TransientError(f"{len(self._handed)} batches wait for their event_id check")
        unsettled: dict[int, int] = {}  # partition -> its first record still in self._handed
        for batch in self._handed:
            for record in batch.records:
                unsettled.setdefault(record.partition, record.offset)
        durable: dict[int, int] = {}
        for partition, next_offset in processed.items():
            waiting = self._rolled.get(partition)
            held = waiting[0] if waiting else self._open.get(partition)
            durable[partition] = unsettled.get(partition, next_offset) if held is None else held.first_offset
        return durable

    def _backlog(self) -> int:
        return max((len(waiting) for waiting in self._rolled.values()), default=0)

    def _upload(self, obj: OpenObject) -> None:
        """In the upload thread: deflate and the PUT run beside the member's own work."""
        self._storage.put(obj.key, obj.encode(self._schema))

    def _collect_uploads(self) -> dict[int, bool]:
        """Uploads finished since the last call, per partition: True when the object is stored (it
        leaves the partition's queue, its offsets become durable), False when it is kept to try
        again. An error that is not transient (a bug, a refused bucket) is raised here."""
        finished: dict[int, bool] = {}
        for partition, upload in list(self._in_flight.items()):
            if not upload.done():
                continue
            del self._in_flight[partition]
            waiting = self._rolled[partition]
            error = upload.exception()
            if error is not None:
                if not is_transient(error):
                    raise error
                ARCHIVE_UPLOADS.labels("failed").inc()
                # Kept, and tried again on the next call: the partition's offsets stay where they are.
                log.warning(
                    "archive upload failed, will retry",
                    extra={"fields": {"key": waiting[0].key, "to": self._storage.name, "error": str(error)}},
                )
                finished[partition] = False
                continue
            ARCHIVE_UPLOADS.labels("ok").inc()
            self._clock_cut_uploaded |= waiting.popleft().cut_by_clock
            if not waiting:
                del self._rolled[partition]
            finished[partition] = True
        return finished

    def must_commit_now(self) -> bool:
        return self._clock_cut_uploaded

    def revoked(self, partitions: list[int]) -> None:
        # What was not uploaded is abandoned: the new owner resumes at the committed offset,
        # which is the first offset of the oldest object dropped here, and writes the same key.
        for partition in partitions:
            upload = self._in_flight.pop(partition, None)
            if upload is not None:
                # Finished (or failed) before the partition is handed over: a late PUT could
                # replace the object its new owner wrote at the same key with a shorter one.
                wait([upload])
            self._open.pop(partition, None)
            self._rolled.pop(partition, None)
        gone = set(partitions)
        for batch in self._handed:
            batch.records = [r for r in batch.records if r.partition not in gone]

    def close(self) -> None:
        self._claims.shutdown(cancel_futures=True)  # waits for a claim running, within its deadline
        self._uploads.shutdown()  # waits for an upload running: never a PUT after the member is gone
        self._in_flight.clear()
        self._handed.clear()
        self._open.clear()
        self._rolled.clear()
        self._store.close()
