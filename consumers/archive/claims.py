"""The archiver's event_id claims, made in a child process of the member: which records of a batch
are second Kafka copies of an event already archived.

The child claims each record's event_id in the settings' state store (`claim_many`, the record's
position as the value): a record whose event_id another position holds is a second copy. Building
a batch's keys and values, and reading the answer, is Python work that in the member's process
would hold the GIL against the member's own thread (see `consumers.archive.child`); the member
sends each record's event_id and position and gets back the few second copies. The store's
StateStoreUnavailable comes back as it is; a dead or silent child raises it too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from consumers.archive.child import ChildProcess
from hookstream.errors import StateStoreUnavailable
from hookstream.settings import Settings
from hookstream.state import key_part, open_store, state_key

# Above the longest a sound child takes to answer: its start (an interpreter and the imports, a
# few seconds on a loaded host), the store's first open (up to 10 s while processes race to put a
# new SQLite file in WAL mode) and one claim (2 s deadlines; Redis retries a stale connection once).
# Far below max.poll.interval.ms (5 min): the member's thread may wait for a claim at pre_commit.
CLAIM_DEADLINE_S = 30.0
# Fast.io retries a delivery for up to 24 h: a second copy of an event arrives within that horizon.
EVENT_ID_WINDOW_S = 26 * 3600

Copy = tuple[str, int, int]  # a record's event_id, partition and offset


@contextmanager
def _claims(settings: Settings) -> Iterator[Callable[[list[Copy]], list[int]]]:
    """In the child: the settings' store, answering which copies are second ones."""
    store = open_store(settings)
    prefix = state_key(settings.topic, "archived", "", group="archiver")  # then the event_id

    def second_copies(copies: list[Copy]) -> list[int]:
        keys = [prefix + key_part(event_id) for event_id, _, _ in copies]
        positions = [f"{partition}:{offset}" for _, partition, offset in copies]
        # The store keeps the position of the copy archived, so a redo of that very record (after
        # a crash or a rebalance) is archived again, as it must be.
        held = store.claim_many(keys, EVENT_ID_WINDOW_S, positions)
        return [
            i for i, (holder, position) in enumerate(zip(held, positions, strict=True)) if holder != position
        ]

    try:
        yield second_copies
    finally:
        store.close()


class ClaimProcess:
    """Claims of the settings' state store, made in a child process; one batch at a time."""

    def __init__(self, settings: Settings) -> None:
        self.name = open_store(settings).name  # building a store connects nothing
        self.child = ChildProcess(
            "archive-claims", _claims, settings, passes=(StateStoreUnavailable,), deadline_s=CLAIM_DEADLINE_S
        )

    def second_copies(self, copies: list[Copy]) -> list[int]:
        """The indices of the copies whose event_id another position has claimed within the window."""
        if not copies:
            return []
        seconds: list[int] = self.child.call(copies)
        return seconds

    def close(self) -> None:
        self.child.close()
