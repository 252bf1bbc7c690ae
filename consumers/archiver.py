"""The archiver group: every event in Avro objects, each Kafka record in exactly one object.

Records stay in memory, one open object per partition, until the object rolls (see
`RollPolicy`); the object is then uploaded, and `pre_commit` vouches only for the offsets before
the first record still held, so the runtime never commits a record that is not stored. An
object's key is its first record's position, and a partition's next object is uploaded only once
Kafka has confirmed the commit of everything before it: whoever redoes the work after a crash or
a rebalance resumes at the key of the one object that may be stored but not committed, and
replaces it, never adding one beside it (even where the redo rolls elsewhere, as a cut by the
clock may). See docs/consumers.md for the roll points chosen.

Two kinds of work run beside the member's own thread, so that a batch costs it little more than
decoding: the event_id checks (`claim_many` in the state store) and the uploads (deflate, then
the PUT). Each is made in a child process of its own (see `consumers.archive.child`), so that its
Python work does not hold this process's GIL: a thread here only sends it and waits for the
answer. A batch's records join their objects at the `pre_commit` after their own, when their
check has had a batch to finish.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import fastavro

from consumers.archive.claims import ClaimProcess
from consumers.archive.container import OpenObject, datum
from consumers.archive.layout import RollPolicy, archive_schema, object_key
from consumers.archive.uploads import UploadProcess
from consumers.errors import TransientError, is_transient
from consumers.handler import Handler, Record
from consumers.metrics import ARCHIVE_UPLOADS
from hookstream.errors import StateStoreUnavailable
from hookstream.settings import Settings

log = logging.getLogger("hookstream.consumers")

# Rolled objects a partition may hold while uploads fail before the member stops taking records
# (memory is the limit: each is up to HOOKSTREAM_ARCHIVE_MAX_BYTES).
MAX_WAITING_PER_PARTITION = 4
# Batches whose event_id check failed a member may hold before it stops taking records.
MAX_UNCHECKED_BATCHES = 8

Position = tuple[int, int]  # partition, offset


class _PendingBatch:
    """The records one batch handed over, and the check of their event_ids, running meanwhile."""

    def __init__(self, check: Future[set[Position]] | None, checking: int = 0) -> None:
        self.check = check  # None: not started, or failed (made again when the batch is archived)
        self.checking = checking  # how many records the check covers: handle() adds no more
        self.records: list[Record] = []
        self.polled_since = False  # a pre_commit ran since it was handed over: archive it at the next


class Archiver(Handler):
    holds_records = True

    def __init__(self, settings: Settings) -> None:
        self._uploader = UploadProcess(settings)
        try:
            self._claims = ClaimProcess(settings)
        except BaseException:
            self._uploader.close()
            raise
        self._group = "archiver"
        self._topic = settings.topic
        self._policy = RollPolicy(settings.archive_max_bytes, int(settings.archive_max_age_s * 1000))
        self._idle_s = settings.archive_max_age_s
        self._schema: Any = fastavro.parse_schema(archive_schema())
        self._open: dict[int, OpenObject] = {}
        self._rolled: dict[int, deque[OpenObject]] = {}
        self._pending: deque[_PendingBatch] = deque()  # handed over, not archived yet; oldest first
        self._checks = ThreadPoolExecutor(1, thread_name_prefix="archive-checks")
        self._uploads = ThreadPoolExecutor(1, thread_name_prefix="archive-uploads")
        self._in_flight: dict[int, Future[None]] = {}  # partition -> the upload of its oldest object
        self._failing: set[int] = set()  # partitions whose last upload failed
        # Per partition owned, how far Kafka confirmed the commit (or where consumption started).
        self._committed: dict[int, int] = {}
        self._owned: set[int] = set()
        for result in ("ok", "failed"):  # both series from the start: rate() sees the first failure
            ARCHIVE_UPLOADS.labels(result)

    # -- records in: queued, their event_ids checked in the background ----------------------------

    def start_batch(self, records: list[Record]) -> None:
        if records:  # an idle poll adds nothing to wait for
            self._pending.append(_PendingBatch(self._checks.submit(self._check, records), len(records)))

    def handle(self, record: Record) -> None:
        """Queue the record: it joins its object once its event_id is checked (see pre_commit).
        The runtime hands over records of the batch it gave start_batch, in its order (some may
        be left out); a record handed over without start_batch (a test), or beyond the count that
        start_batch checks, goes to a batch checked when it is archived."""
        last = self._pending[-1] if self._pending else None
        if last is None or (last.check is not None and len(last.records) >= last.checking):
            last = _PendingBatch(None)
            self._pending.append(last)
        last.records.append(record)

    def _check(self, records: list[Record]) -> set[Position]:
        """The positions of the records that are second Kafka copies of an archived event."""
        try:
            seconds = self._claims.second_copies(
                [(r.envelope.event_id, r.partition, r.offset) for r in records]
            )
        except StateStoreUnavailable as exc:
            raise TransientError(str(exc)) from exc
        return {(records[i].partition, records[i].offset) for i in seconds}

    def _archive_checked(self) -> None:
        """Add to their objects the records of every batch handed over before the last call; those
        handed over since wait for the next. While a check fails (the store unreachable), its batch
        and every later one wait, their offsets held back; it is made again on every call."""
        while self._pending and self._pending[0].polled_since:
            batch = self._pending[0]
            try:
                # Without a check (handed over without start_batch, or it failed): made now.
                seconds = batch.check.result() if batch.check is not None else self._check(batch.records)
            except Exception as exc:
                batch.check = None
                if not is_transient(exc):
                    raise
                log.warning(
                    "event_id check failed, will retry",
                    extra={"fields": {"group": self._group, "store": self._claims.name, "error": str(exc)}},
                )
                break
            records = batch.records
            if seconds:  # rare: most batches hold no second copy
                records = [r for r in records if (r.partition, r.offset) not in seconds]
            for record in records:
                self._add(record)
            self._pending.popleft()
        for batch in self._pending:
            batch.polled_since = True

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
        self._archive_checked()
        # An object open longer than the age limit on the clock is cut here, so a quiet partition
        # is durable within that time (a busy one usually rolls by record time first). Unlike a
        # roll, a redo may cut elsewhere; that is safe because it is the only object of its
        # partition stored and not committed (see _start_uploads), so a redo starts at its key.
        now = time.monotonic()
        for partition in [p for p, o in self._open.items() if now - o.opened >= self._idle_s]:
            self._roll(partition)
        self._collect_uploads()
        self._start_uploads()
        backlog = max((len(self._rolled[p]) for p in self._failing), default=0)
        if backlog >= MAX_WAITING_PER_PARTITION:
            # The store is down and memory fills up: stop taking records (the runtime retries this
            # call with backoff, then stops the member, whose successor redoes the work).
            raise TransientError(f"{backlog} archive objects of one partition wait for upload")
        if len(self._pending) > MAX_UNCHECKED_BATCHES:
            # The same while the state store is down.
            raise TransientError(f"{len(self._pending)} batches wait for their event_id check")
        unchecked: dict[int, int] = {}  # partition -> its first record not in an object yet
        for batch in self._pending:
            for record in batch.records:
                unchecked.setdefault(record.partition, record.offset)
        durable: dict[int, int] = {}
        for partition, next_offset in processed.items():
            waiting = self._rolled.get(partition)
            held = waiting[0] if waiting else self._open.get(partition)
            durable[partition] = unchecked.get(partition, next_offset) if held is None else held.first_offset
        return durable

    def assigned(self, partitions: list[int]) -> None:
        self._owned.update(partitions)

    def committed(self, offsets: dict[int, int]) -> None:
        for partition, offset in offsets.items():
            # A late confirmation for a partition that left (or left and came back) is no news:
            # the runtime reports where consumption restarted when it comes back.
            if partition in self._owned and offset > self._committed.get(partition, -1):
                self._committed[partition] = offset

    def _start_uploads(self) -> None:
        """Upload each partition's oldest rolled object, one per partition at a time, and only once
        Kafka confirmed the commit of every record before it: at most one object per partition is
        ever stored and not committed (the commit barrier that makes a redo land on its key)."""
        for partition, waiting in self._rolled.items():
            obj = waiting[0]
            if partition in self._in_flight or self._committed.get(partition, -1) < obj.first_offset:
                continue
            self._in_flight[partition] = self._uploads.submit(self._upload, obj)

    def _upload(self, obj: OpenObject) -> None:
        """In the upload thread, which waits while the upload process deflates and stores it."""
        self._uploader.put(obj.key, obj.blocks())

    def _collect_uploads(self) -> None:
        """Take the uploads finished since the last call: a stored object leaves its partition's
        queue (its offsets become durable); a failed one stays, to be tried again. An error that
        is not transient (a bug, a refused bucket) is raised here."""
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
                self._failing.add(partition)
                log.warning(
                    "archive upload failed, will retry",
                    extra={"fields": {"key": waiting[0].key, "to": self._uploader.name, "error": str(error)}},
                )
                continue
            ARCHIVE_UPLOADS.labels("ok").inc()
            self._failing.discard(partition)
            waiting.popleft()
            if not waiting:
                del self._rolled[partition]

    def revoked(self, partitions: list[int]) -> None:
        # What was not uploaded is abandoned: the new owner resumes at the committed offset,
        # which is the first offset of the oldest object dropped here, and writes the same key.
        for partition in partitions:
            upload = self._in_flight.pop(partition, None)
            if upload is not None and not upload.cancel():
                # Running: let it finish before the partition is handed over, so that no PUT of
                # this member lands after its new owner has written the same key.
                upload.exception()
            self._open.pop(partition, None)
            self._rolled.pop(partition, None)
            self._failing.discard(partition)
            self._committed.pop(partition, None)
            self._owned.discard(partition)
        gone = set(partitions)
        for batch in self._pending:
            batch.records = [r for r in batch.records if r.partition not in gone]

    def close(self) -> None:
        # Queued work is dropped; a check or an upload running is waited for (within its client's
        # timeout), so no PUT of this member lands after it is gone.
        self._checks.shutdown(cancel_futures=True)
        self._uploads.shutdown(cancel_futures=True)
        self._pending.clear()
        self._in_flight.clear()
        self._open.clear()
        self._rolled.clear()
        self._claims.close()
        self._uploader.close()
