"""DLQ headers, replay selection and headers, the replay ledger and lock (on both state store
backends), the group registry."""

import os
import subprocess
import sys
import threading
import time
import types
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Message

from consumers import dlq, registry
from consumers import replay as replay_module
from consumers.dlq import DeadLetter, dead_letter_headers
from consumers.errors import ConsumerError, PermanentError, UnknownGroupError
from consumers.handler import Handler
from consumers.replay import ReplayFilter, ReplayLedger, replay_headers, replay_timestamp_ms
from hookstream.settings import Settings
from hookstream.state import open_store

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


def test_the_ledger_remembers_across_runs_and_per_dlq_topic(state_settings: Settings) -> None:
    ledger = ReplayLedger(open_store(state_settings), "dlq")
    with ledger.locked():
        assert ledger.replayed([_letter()]) == set()
        ledger.record([_letter()])
    ledger.close()
    again = ReplayLedger(open_store(state_settings), "dlq")  # the next run, maybe on another host
    other = DeadLetter(2, 8, None, None, [(dlq.GROUP, b"g")])
    assert again.replayed([_letter(), other]) == {(1, 7)}
    assert ReplayLedger(open_store(state_settings), "other-dlq").replayed([_letter()]) == set()
    again.close()


def test_one_replay_at_a_time(state_settings: Settings) -> None:
    first, second = (ReplayLedger(open_store(state_settings), "dlq") for _ in range(2))
    busy = pytest.raises(ConsumerError, match="another `dlq replay` of dlq is running")
    with first.locked(), busy, second.locked(0.2):
        pass
    with second.locked(0.2):  # released: the next replay runs
        pass
    first.close()
    second.close()


def test_a_replay_that_outlived_its_lock_releases_only_its_own(
    state_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_module, "LOCK_TTL_S", 0.3)
    slow, next_one, third = (ReplayLedger(open_store(state_settings), "dlq") for _ in range(3))
    with slow.locked():
        time.sleep(0.6)  # its lock expired (as for a replay killed mid-run)
        with next_one.locked(0.2):
            pass
        monkeypatch.setattr(replay_module, "LOCK_TTL_S", 60.0)
        next_one_again = next_one.locked(0.2)
        next_one_again.__enter__()
    # The slow replay's release did not free the lock the other one holds now.
    with pytest.raises(ConsumerError, match="is running"), third.locked(0.2):
        pass
    next_one_again.__exit__(None, None, None)
    with third.locked(0.2):
        pass
    for ledger in (slow, next_one, third):
        ledger.close()


def test_a_waiting_replay_runs_once_the_other_finished(state_settings: Settings) -> None:
    first, second = (ReplayLedger(open_store(state_settings), "dlq") for _ in range(2))
    order: list[str] = []

    def other_replay() -> None:
        with second.locked(10):
            order.append("second")

    with first.locked():
        waiting = threading.Thread(target=other_replay)
        waiting.start()
        time.sleep(0.3)
        order.append("first")
    waiting.join(10)
    assert order == ["first", "second"]
    first.close()
    second.close()


def test_replay_refuses_in_one_line_when_the_store_is_down(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "HOOKSTREAM_REDIS_URL": "redis://127.0.0.1:9/0",  # nothing listens on port 9
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
        "HOOKSTREAM_DATA_DIR": str(tmp_path),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "hookstream"), "dlq", "replay", "--group", "notifier"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "dlq replay refuses to run" in lines[0] and "redis://127.0.0.1:9/0" in lines[0]


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


def test_a_replay_is_stamped_at_least_the_mark_after_its_original() -> None:
    def letter(original_ms: str | None) -> DeadLetter:
        headers = [(dlq.GROUP, b"indexer")]
        if original_ms is not None:
            headers.append((dlq.ORIGINAL_TIMESTAMP, original_ms.encode()))
        return DeadLetter(1, 7, b"ws-1", b"value", headers)

    now = 1_000_000
    mark = dlq.REPLAY_MIN_AGE_MS
    assert replay_timestamp_ms(letter(str(now - mark - 1)), now) == now  # old enough: now
    assert replay_timestamp_ms(letter(str(now - 10)), now) == now - 10 + mark  # too young
    assert replay_timestamp_ms(letter(None), now) == now + mark  # unknown original: the safe side
    assert replay_timestamp_ms(letter("garbage"), now) == now + mark
