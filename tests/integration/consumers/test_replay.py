"""DLQ replay through the CLI: only the failing group sees the record again, and only once."""

from __future__ import annotations

from click.testing import CliRunner
from confluent_kafka import Consumer, TopicPartition

from consumers.dlq import REPLAY_GROUP, REPLAY_MIN_AGE_MS, REPLAY_SOURCE, read_dead_letters
from consumers.errors import PermanentError
from consumers.runtime import Member
from hookstream.cli import cli
from hookstream.settings import Settings
from tests.integration.consumers.consumer_helpers import (
    Recorder,
    Running,
    envelope,
    fast,
    produce,
    sample,
    unique,
    wait_until,
)


def _env(settings: Settings) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "HOOKSTREAM_TOPIC": settings.topic,
        "HOOKSTREAM_DLQ_TOPIC": settings.dlq_topic,
        "HOOKSTREAM_DATA_DIR": str(settings.data_dir),
    }


def _topic_size(settings: Settings) -> int:
    consumer = Consumer({**settings.kafka_common(), "group.id": "size-probe"})
    try:
        return sum(
            consumer.get_watermark_offsets(TopicPartition(settings.topic, p), timeout=10)[1] for p in range(4)
        )
    finally:
        consumer.close()


def test_replay_reaches_only_the_failing_group_and_never_twice(settings: Settings) -> None:
    settings = fast(settings)
    produce(settings, [envelope(n) for n in range(10)])
    downstream_broken = True

    def fail(record):  # type: ignore[no-untyped-def]
        if downstream_broken and record.envelope.event_id == "evt-4":
            return PermanentError("downstream refused evt-4")
        return None

    failing, healthy = unique("failing"), unique("healthy")
    failing_handler, healthy_handler = Recorder(fail), Recorder()
    members = [
        Running(Member(settings, failing, failing_handler)),
        Running(Member(settings, healthy, healthy_handler)),
    ]
    runner = CliRunner()
    try:
        for group in (failing, healthy):
            wait_until(lambda g=group: sample("hookstream_consumer_messages_processed_total", group=g) >= 10)
        assert "evt-4" not in failing_handler.handled()
        assert [d.event_id for d in read_dead_letters(settings)] == ["evt-4"]

        size = _topic_size(settings)
        dry = runner.invoke(cli, ["dlq", "replay", "--group", failing, "--dry-run"], env=_env(settings))
        assert dry.exit_code == 0, dry.output
        assert "would replay 1" in dry.output and _topic_size(settings) == size

        downstream_broken = False  # the fix is deployed; now replay
        done = runner.invoke(cli, ["dlq", "replay", "--group", failing], env=_env(settings))
        assert done.exit_code == 0, done.output
        assert "replayed 1, skipped 0" in done.output
        wait_until(
            lambda: "evt-4" in failing_handler.handled(), what="the replayed record at the failing group"
        )
        # The healthy group read the replayed record too (it is in the topic) and skipped it.
        wait_until(lambda: sample("hookstream_consumer_messages_consumed_total", group=healthy) >= 11)

        again = runner.invoke(cli, ["dlq", "replay"], env=_env(settings))
        assert again.exit_code == 0, again.output
        assert "replayed 0, skipped 1 replayed before" in again.output
    finally:
        for member in members:
            member.stop()

    assert failing_handler.handled().count("evt-4") == 1
    assert healthy_handler.handled().count("evt-4") == 1  # only its first, original delivery
    assert sorted(healthy_handler.handled()) == sorted(f"evt-{n}" for n in range(10))
    assert _topic_size(settings) == 11  # one replayed record, once
    listed = runner.invoke(cli, ["dlq", "list", "--group", healthy], env=_env(settings))
    assert listed.exit_code == 0 and "0 record(s)" in listed.output
    letter = next(iter(read_dead_letters(settings)))
    shown = runner.invoke(cli, ["dlq", "show", letter.position], env=_env(settings))
    assert shown.exit_code == 0
    assert f"header dlq.group: {failing}" in shown.output and "envelope event_id: evt-4" in shown.output
    assert "downstream refused" in shown.output and REPLAY_GROUP not in shown.output


def test_replayed_records_carry_their_address_and_source(settings: Settings) -> None:
    settings = fast(settings)
    produce(settings, [(b"ws-1", b"poison")])
    group = unique("poisoned")
    running = Running(Member(settings, group, Recorder()))
    try:
        wait_until(
            lambda: sample("hookstream_consumer_dead_lettered_total", group=group, reason="poison") == 1
        )
        result = CliRunner().invoke(cli, ["dlq", "replay", "--event-id", "none-such"], env=_env(settings))
        assert "replayed 0, skipped 0" in result.output
        result = CliRunner().invoke(cli, ["dlq", "replay", "--since", "10m"], env=_env(settings))
        assert "replayed 1" in result.output, result.output
        # Still poison: it comes back to the same group, which dead-letters it again.
        wait_until(
            lambda: sample("hookstream_consumer_dead_lettered_total", group=group, reason="poison") == 2
        )
    finally:
        running.stop()
    first, second = list(read_dead_letters(settings))
    assert second.header(REPLAY_SOURCE) is None  # the DLQ story is rewritten, not stacked
    assert second.header("dlq.original.offset") == "1" and first.header("dlq.original.offset") == "0"
    assert second.value == first.value == b"poison" and second.key == b"ws-1"
    # Replayed seconds after the original, yet stamped as a replay: the mark members look for.
    first_ms, second_ms = first.original_timestamp_ms, second.original_timestamp_ms
    assert first_ms is not None and second_ms is not None
    assert second_ms >= first_ms + REPLAY_MIN_AGE_MS
