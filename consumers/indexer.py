"""The indexer group: a searchable index of files per workspace (`consumers.index`).

A batch is written as one write (a transaction, a `_bulk`) as soon as the runtime shows it
(`start_batch`), so that `handle` can give each record its own outcome: a record the index
refuses for good (a payload without JSON or object id, a document OpenSearch cannot map)
goes to the DLQ alone and the rest of the batch stays durable. When the write fails in a way
that may pass (the index unreachable, 429, 5xx), nothing is refused: `flush` writes the batch
again, raising TransientError until it succeeds, so the runtime retries it with backoff and
sends nothing to the DLQ.
"""

from __future__ import annotations

from collections.abc import Iterator

from consumers.errors import PermanentError, TransientError
from consumers.handler import Handler, Record
from consumers.index import open_index
from consumers.index.events import FileEvent, file_event
from hookstream.settings import Settings

_Position = tuple[str, int, int]


def _position(record: Record) -> _Position:
    return record.topic, record.partition, record.offset


class Indexer(Handler):
    def __init__(self, settings: Settings) -> None:
        self._index = open_index(settings)
        # Each record start_batch saw, with why it cannot be indexed (None: written).
        self._outcomes: dict[_Position, Exception | None] = {}
        self._unwritten: list[FileEvent] = []  # for flush: a failed write, records start_batch did not see

    def start_batch(self, records: list[Record]) -> None:
        events: list[FileEvent] = []
        owners: list[_Position] = []

        def mapped() -> Iterator[FileEvent]:  # lazily: a backend may map and write side by side
            for record in records:
                position = _position(record)
                try:
                    event = file_event(record.envelope)
                except Exception as exc:  # its own record's outcome, raised by handle
                    self._outcomes[position] = exc
                    continue
                self._outcomes[position] = None
                if event is not None:
                    events.append(event)
                    owners.append(position)
                    yield event

        try:
            refused = self._index.write(mapped())
        except TransientError:
            self._unwritten.extend(events)  # flush tries again, as the runtime's retries say
            return
        for at, error in refused.items():
            self._outcomes[owners[at]] = error

    def handle(self, record: Record) -> None:
        position = _position(record)
        if position in self._outcomes:
            error = self._outcomes.pop(position)
            if error is not None:
                raise error
            return
        event = file_event(record.envelope)
        if event is not None:
            self._unwritten.append(event)

    def flush(self) -> None:
        self._outcomes.clear()  # records the runtime skipped (their partition moved) are the new owner's
        if not self._unwritten:
            return
        refused = self._index.write(self._unwritten)  # TransientError: the runtime calls flush again
        self._unwritten.clear()
        if refused:
            # Their records are handled already; stopping the member (FlushError) leaves their
            # offsets unstored, so they come again, are refused in start_batch, and go to the DLQ.
            first = next(iter(refused.values()))
            raise PermanentError(f"{len(refused)} file(s) refused by the index on a retried write: {first}")

    def close(self) -> None:
        self._unwritten.clear()  # never flushed: its offsets were not stored, Kafka delivers it again
        self._outcomes.clear()
        self._index.close()
