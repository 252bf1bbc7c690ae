"""What a consumer group can raise, and how the runtime reads it.

Handlers raise `TransientError` for what may work on a later attempt (a timeout, a 5xx, a
locked database) and `PermanentError` for what never will (a 4xx, a payload they reject).
The runtime retries the first kind in place and dead-letters the second at once; any other
exception counts as permanent, so a bug dead-letters the record instead of stalling the group.
"""

from __future__ import annotations

from hookstream.errors import HookstreamError


class ConsumerError(HookstreamError):
    """Root of the consumer side's own errors."""


class TransientError(ConsumerError):
    """Processing failed in a way that may succeed when tried again."""


class UnavailableError(TransientError):
    """A shared system the group needs (its state store) does not answer. The record is not at
    fault: it is retried until the system answers, never dead-lettered (lag grows meanwhile)."""


class PermanentError(ConsumerError):
    """Processing can never succeed for this record: dead-letter it."""


class DeadLetterError(ConsumerError):
    """Kafka did not acknowledge a DLQ record; the original offset must not be committed."""


class CircuitOpenError(ConsumerError):
    """Too many recent records went to the DLQ: the member stopped so the topic is not drained."""


class FlushError(ConsumerError):
    """A handler could not make a batch's effects durable; the batch will be processed again."""


class UnknownGroupError(ConsumerError):
    """`hookstream consume <group>` named a group nobody registered."""


# Exceptions from outside Hookstream that mean "try again": network trouble and timeouts.
TRANSIENT_TYPES: tuple[type[BaseException], ...] = (TransientError, TimeoutError, ConnectionError)


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, TRANSIENT_TYPES)
