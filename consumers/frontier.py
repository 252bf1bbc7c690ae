"""Offset tracking: how far each partition is processed, and how far it is durable.

`processed` is the next offset after the last record whose processing finished (handled,
dead-lettered or skipped); `durable` is what the handler's `pre_commit` declared durable, the
only offset ever stored for commit. The two are equal for a handler that flushes every batch;
an archiver that keeps a file open across batches holds `durable` at that file's first offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class OffsetFrontier:
    """Both frontiers of the partitions this member owns (partition -> next offset)."""

    def __init__(self) -> None:
        self.processed: dict[int, int] = {}
        self.durable: dict[int, int] = {}
        # Durable offsets advanced since the last `take_stored`: what still has to be stored.
        self._unstored: dict[int, int] = {}

    def finished(self, partition: int, offset: int) -> None:
        # The first record processed here marks where durability starts: the committed offset.
        self.durable.setdefault(partition, offset)
        self.processed[partition] = offset + 1

    def declare(self, durable: Mapping[int, int]) -> None:
        """The handler's answer to `pre_commit`: offsets whose effects are durable.

        Never beyond what was processed (a handler cannot vouch for a record it never saw),
        never backwards, and only for partitions still owned here.
        """
        for partition, offset in durable.items():
            processed = self.processed.get(partition)
            if processed is None:
                continue
            offset = min(offset, processed)
            if offset > self.durable.get(partition, -1):
                self.durable[partition] = offset
                self._unstored[partition] = offset

    def take_stored(self) -> dict[int, int]:
        """The durable offsets not stored yet; the caller stores them."""
        unstored, self._unstored = self._unstored, {}
        return unstored

    def not_durable(self, partition: int) -> int:
        """Records processed in `partition` whose effects are not durable yet."""
        processed = self.processed.get(partition)
        if processed is None:
            return 0
        return processed - self.durable[partition]

    def forget(self, partitions: Iterable[int]) -> None:
        """The partitions left this member: whatever is not stored yet is the new owner's to redo."""
        for partition in partitions:
            self.processed.pop(partition, None)
            self.durable.pop(partition, None)
            self._unstored.pop(partition, None)

    def abandon(self) -> None:
        """Store nothing more (the handler's state is suspect after a crash)."""
        self._unstored.clear()
        self.processed.clear()
        self.durable.clear()
