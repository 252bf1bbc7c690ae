"""What a consumer group is: a handler that sees decoded records and never touches Kafka.

The runtime calls `handle` once per record, in partition order, and `flush` before it stores
the offsets of the records handled since the last flush: whatever `handle` staged must be
durable when `flush` returns. Before handling a batch it shows the handler the whole batch
(`start_batch`), so a handler whose effects are slow (network calls) can start them side by
side; `handle` still decides each record's outcome, in order. A handler raises
`TransientError` to be retried in place and anything else to send the record to the DLQ.
Effects must be idempotent by event_id, because after a crash, a rebalance or a replay the
same record can arrive again.
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

    def handle(self, record: Record) -> None:
        raise NotImplementedError

    def start_batch(self, records: list[Record]) -> None:
        """The decoded records of the batch about to be handled, in order. Work started here must
        still let `handle` raise each record's own error, and settle by the next `flush`."""

    def flush(self) -> None:
        """Make every effect staged by `handle` durable. Called after each batch (and when idle)."""

    def assigned(self, partitions: list[int]) -> None:
        """This member now owns `partitions` (too); state kept per partition may need a refresh."""

    def close(self) -> None:
        """Release files and connections; the runtime has already flushed."""
