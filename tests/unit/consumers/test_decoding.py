"""What a consumed record is to a group: a record to handle, poison, or a replay for another
group, which is told by the replay's Kafka timestamp first and its headers then."""

from datetime import UTC, datetime

from confluent_kafka import Message

from consumers.decoding import Decoder
from consumers.dlq import REPLAY_GROUP, REPLAY_MIN_AGE_MS
from consumers.handler import Record
from consumers.metrics import MemberMetrics
from consumers.retry import RetryPolicy
from hookstream.errors import SchemaError
from hookstream.settings import Settings
from schemas import codec

RECEIVED = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RECEIVED_MS = int(RECEIVED.timestamp() * 1000)


def _decoder() -> Decoder:
    return Decoder(Settings(), "indexer", RetryPolicy(), MemberMetrics("indexer"), lambda _s, _k: None)


def _outcome(msg: Message) -> object:
    """What the decoder makes of `msg`, at the position the runtime read from it."""
    return _decoder().outcome(msg, ("events", 1), 7)


def _message(timestamp_ms: int, address: bytes | None, value: bytes | None = None) -> Message:
    envelope = codec.Envelope(
        event_id="evt-1",
        provider="fastio",
        event_type="workspace_storage_file_added",
        workspace_id="ws-1",
        payload=b"{}",
        received_at=RECEIVED,
    )
    headers: list[tuple[str, str | bytes | None]] = [*envelope.headers()]
    if address is not None:
        headers.append((REPLAY_GROUP, address))
    return Message(
        topic="events",
        partition=1,
        offset=7,
        key=b"ws-1",
        value=codec.encode(envelope) if value is None else value,
        headers=headers,
        timestamp=(1, timestamp_ms),
    )


def test_a_replay_is_handled_by_the_group_it_names_only() -> None:
    replayed_at = RECEIVED_MS + REPLAY_MIN_AGE_MS  # as `dlq replay` stamps it, at the earliest
    assert _outcome(_message(replayed_at, b"notifier")) is None
    mine = _outcome(_message(replayed_at, b"indexer"))
    assert isinstance(mine, Record) and mine.timestamp_ms == replayed_at
    assert isinstance(_outcome(_message(replayed_at + 3_600_000, None)), Record)


def test_records_stamped_as_the_producer_stamps_them_are_not_searched_for_an_address() -> None:
    # The headers of an ordinary record are never read (their Python objects cost every record):
    # an address there without the replay's stamp is not looked at.
    produced_at = RECEIVED_MS + REPLAY_MIN_AGE_MS - 1
    assert isinstance(_outcome(_message(produced_at, b"notifier")), Record)


def test_poison_for_another_group_is_skipped_and_poison_for_this_one_is_poison() -> None:
    # Poison has no received_at to compare with: its headers are always read.
    assert _outcome(_message(RECEIVED_MS, b"notifier", value=b"poison")) is None
    assert isinstance(_outcome(_message(RECEIVED_MS, b"indexer", value=b"poison")), SchemaError)
    assert isinstance(_outcome(_message(RECEIVED_MS, None, value=b"poison")), SchemaError)
