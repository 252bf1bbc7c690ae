"""DLQ headers, replay selection and headers, the replay ledger, the group registry."""

import sys
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Message

from consumers import dlq, registry
from consumers.dlq import DeadLetter, dead_letter_headers
from consumers.errors import ConsumerError, PermanentError, UnknownGroupError
from consumers.handler import Handler
from consumers.replay import ReplayFilter, ReplayLedger, parse_since, replay_headers
from hookstream.settings import Settings

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def _message(headers: list[tuple[str, bytes]] | None) -> Message:
    return Message(
        topic="events",
        partition=3,
        offset=42,
        key=b"ws-1",
        value=b"\x00raw",
        headers=headers,
        timestamp=(1, 1700),
    )


def test_dead_letter_headers_keep_the_original_ones_and_tell_the_story() -> None:
    original = [("event_id", b"evt-1"), ("provider", b"fastio")]
    headers = dead_letter_headers(
        _message(original), "indexer", PermanentError("x" * 2000), 3, "permanent", NOW
    )
    assert headers[:2] == original
    story = {k: v.decode() for k, v in headers[2:]}
    assert story == {
        dlq.ORIGINAL_TOPIC: "events",
        dlq.ORIGINAL_PARTITION: "3",
        dlq.ORIGINAL_OFFSET: "42",
        dlq.ORIGINAL_TIMESTAMP: "1700",
        dlq.GROUP: "indexer",
        dlq.REASON: "permanent",
        dlq.ERROR_CLASS: "PermanentError",
        dlq.ERROR_MESSAGE: "x" * 497 + "...",
        dlq.ATTEMPTS: "3",
        dlq.FAILED_AT: "2026-05-01T12:00:00.000+00:00",
    }


def test_a_record_failing_again_after_replay_carries_one_story_only() -> None:
    replayed = [("event_id", b"evt-1"), (dlq.REPLAY_GROUP, b"indexer"), (dlq.GROUP, b"old")]
    headers = dead_letter_headers(_message(replayed), "indexer", ValueError("bug"), 1, "permanent", NOW)
    names = [k for k, _ in headers]
    assert names.count(dlq.GROUP) == 1 and dlq.REPLAY_GROUP not in names
    assert (
        dead_letter_headers(_message(None), "g", ValueError(), 1, "poison", NOW)[0][0] == dlq.ORIGINAL_TOPIC
    )


def _letter(group: str | None = "indexer", event_id: str = "evt-1", failed: datetime = NOW) -> DeadLetter:
    headers = [("event_id", event_id.encode()), (dlq.FAILED_AT, failed.isoformat().encode())]
    if group:
        headers.append((dlq.GROUP, group.encode()))
    return DeadLetter(1, 7, b"ws-1", b"value", headers)


def test_replay_filter_selects_by_group_event_and_time() -> None:
    assert ReplayFilter().matches(_letter())
    assert not ReplayFilter().matches(_letter(group=None))  # nobody to send it back to
    assert ReplayFilter(group="indexer").matches(_letter())
    assert not ReplayFilter(group="notifier").matches(_letter())
    assert not ReplayFilter(event_id="evt-2").matches(_letter())
    assert ReplayFilter(since=NOW - timedelta(minutes=1)).matches(_letter())
    assert not ReplayFilter(since=NOW + timedelta(minutes=1)).matches(_letter())


def test_replay_headers_address_the_failing_group_and_name_the_source() -> None:
    letter = _letter()
    headers = replay_headers(letter, "dlq-topic")
    assert headers == [
        ("event_id", b"evt-1"),
        (dlq.REPLAY_GROUP, b"indexer"),
        (dlq.REPLAY_SOURCE, b"dlq-topic:1:7"),
    ]


def test_since_accepts_ages_and_iso_times() -> None:
    assert parse_since("90m", NOW) == NOW - timedelta(minutes=90)
    assert parse_since("2d", NOW) == NOW - timedelta(days=2)
    assert parse_since("2026-05-01T10:00:00Z") == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert parse_since("2026-05-01T10:00:00") == datetime(2026, 5, 1, 10, tzinfo=UTC)
    with pytest.raises(ConsumerError, match="neither an ISO time"):
        parse_since("yesterday")


def test_the_ledger_remembers_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    ledger = ReplayLedger(path)
    with ledger.locked():
        ledger.record("dlq", [_letter()])
    ledger.close()
    again = ReplayLedger(path)
    assert again.replayed("dlq") == {(1, 7)}
    assert again.replayed("other-dlq") == set()
    with pytest.raises(RuntimeError), again.locked():
        again.record("dlq", [DeadLetter(2, 8, None, None, [(dlq.GROUP, b"g")])])
        raise RuntimeError("crash before the commit")
    assert again.replayed("dlq") == {(1, 7)}  # what was not committed is not remembered
    again.close()


def test_the_registry_knows_the_built_in_groups_and_names_them_when_asked_for_another() -> None:
    assert {"indexer", "notifier", "archiver"} <= set(registry.group_names())
    for name in ("indexer", "notifier", "archiver"):
        assert issubclass(registry.load(name), Handler)  # type: ignore[arg-type]
    with pytest.raises(UnknownGroupError, match=r"known groups: .*archiver"):
        registry.load("thumbnailer")


def test_a_group_is_a_few_lines(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Thumbnailer(Handler):
        def __init__(self, settings: Settings) -> None:
            self.seen: list[str] = []

        def handle(self, record) -> None:  # type: ignore[no-untyped-def]
            self.seen.append(record.envelope.event_id)

    module = types.ModuleType("team_thumbs")
    module.Thumbnailer = Thumbnailer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "team_thumbs", module)
    monkeypatch.setitem(registry.GROUPS, "thumbnailer", "team_thumbs:Thumbnailer")
    assert isinstance(registry.load("thumbnailer")(Settings(data_dir=tmp_path)), Thumbnailer)
