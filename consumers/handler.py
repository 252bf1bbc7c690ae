"""What a consumer group is: a handler that sees decoded records and never touches Kafka.

The runtime calls `handle` once per record, in partition order, after showing the handler the
whole batch (`start_batch`). A handler raises `TransientError` to be retried in place and
anything else to send the record to the DLQ. Effects must be idempotent by event_id: after a
crash, a rebalance or a replay the same record can arrive again.

After each batch the runtime asks `pre_commit` which offsets are durable and stores only
those. By default that flushes and vouches for everything processed; a handler that keeps
records across batches (the archiver, until a file is uploaded) answers with less.
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.codec import Envelope


@dataclass(frozen=True, slots=True)
class Record:
    """A decoded envelope and where it sits in Kafka."""

    envelope: Envelope
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    value: bytes = b""  # the encoded envelope as it came from Kafka (b"" when built by hand)


class Handler:
    """Base class of every group: override `handle`, and `flush`/`close` when effects are batched."""

    # True for a handler whose `pre_commit` may vouch for less than was processed: the runtime then
    # commits (asynchronously) whenever its durable offsets advance, and tells it (`committed`).
    holds_records = False

    def handle(self, record: Record) -> None:
        raise NotImplementedError

    def start_batch(self, records: list[Record]) -> None:
        """The decoded records of the batch about to be handled, in order. Work started here must
        still let `handle` raise each record's own error, and settle by the next `flush` (for a
        handler that holds records, by a later `pre_commit`)."""

    def flush(self) -> None:
        """Make every effect staged by `handle` durable (the default `pre_commit` calls it)."""

    def pre_commit(self, processed: dict[int, int]) -> dict[int, int]:
        """Given, per partition, the next offset after the records processed so far, return the
        offsets whose effects are durable: the runtime stores only those (Kafka Connect's
        `SinkTask.preCommit`). Called after each batch, when idle, and before partitions leave.
        A transient error is retried; a handler may also return less and try again next call."""
        self.flush()
        return processed

    def committed(self, offsets: dict[int, int]) -> None:
        """Everything before these offsets (partition -> offset) is committed: Kafka confirmed a
        commit, or the member started consuming a partition there. For a handler whose next
        write is only safe once what came before it is committed (the archiver). A confirmation
        may arrive late, for a partition that has left this member since."""

    def assigned(self, partitions: list[int]) -> None:
        """This member now owns `partitions` (too); state kept per partition may need a refresh."""

    def revoked(self, partitions: list[int]) -> None:
        """`partitions` left this member, after a last `pre_commit` whose offsets were committed:
        drop what is kept for them (the new owner resumes at the committed offset)."""

    def close(self) -> None:
        """Release files and connections. After a clean stop the runtime called `pre_commit`
        first; after a crash it did not, and whatever was staged is abandoned (it is redone)."""
