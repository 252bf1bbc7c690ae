"""`offsets reset` against a real broker: each target, dry runs, and refusal while a group is live."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from hookstream.admin import admin_client
from hookstream.offsets import (
    GroupActiveError,
    ResetTarget,
    apply_reset,
    committed_offsets,
    plan_reset,
    topic_partitions,
)
from hookstream.offsets_cli import offsets
from hookstream.settings import Settings
from tests.integration.hookstream.group_helpers import Member, commit, produce, unique_group

# Records a minute apart from an hour ago, on partition 0. Recent on purpose: records stamped in
# 2023 were past the broker's 7-day retention, so whenever its periodic check ran between the
# produce and a reset it deleted them, and "earliest" became the end of the partition.
BASE = float(int(time.time()) // 60 * 60 - 3600)


@pytest.fixture
def group(settings: Settings) -> str:
    """A group that has processed everything: 5 records on partition 0, 2 on partition 1."""
    produce(settings, 0, [BASE + 60 * i for i in range(5)])
    produce(settings, 1, [BASE, BASE + 600])
    name = unique_group("reset")
    commit(settings, name, {0: 5, 1: 2})
    return name


def _committed(settings: Settings, group: str) -> dict[int, int]:
    admin = admin_client(settings)
    partitions = topic_partitions(admin, settings.topic)
    return {p: o for (_, p), o in committed_offsets(admin, group, partitions).items()}


def _reset(settings: Settings, *args: str) -> tuple[int, str]:
    env = {"KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers, "HOOKSTREAM_TOPIC": settings.topic}
    result = CliRunner().invoke(offsets, ["reset", *args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_to_earliest_replays_everything_retained(settings: Settings, group: str) -> None:
    code, out = _reset(settings, "--group", group, "--to-earliest")
    assert code == 0, out
    assert _committed(settings, group) == {0: 0, 1: 0, 2: 0, 3: 0}
    assert f"group {group} moved to earliest on 4 partition(s)" in out


def test_to_datetime_starts_at_the_first_record_at_or_after_it(settings: Settings, group: str) -> None:
    # Between record 2 (BASE+120) and record 3 (BASE+180) on partition 0; after both of partition 1.
    at = datetime.fromtimestamp(BASE + 150, UTC).isoformat()
    code, out = _reset(settings, "--group", group, "--to-datetime", at)
    assert code == 0, out
    assert _committed(settings, group) == {0: 3, 1: 1, 2: 0, 3: 0}


def test_datetime_after_every_record_moves_to_the_end(settings: Settings, group: str) -> None:
    commit(settings, group, {0: 0, 1: 0})
    moves = plan_reset(
        admin_client(settings), group, settings.topic, ResetTarget("datetime", datetime.now(UTC))
    )
    assert [(m.partition, m.current, m.new) for m in moves] == [
        (0, 0, 5),
        (1, 0, 2),
        (2, None, 0),
        (3, None, 0),
    ]


def test_to_latest_skips_the_backlog(settings: Settings, group: str) -> None:
    commit(settings, group, {0: 1, 1: 0})
    code, out = _reset(settings, "--group", group, "--to-latest")
    assert code == 0, out
    assert _committed(settings, group) == {0: 5, 1: 2, 2: 0, 3: 0}


def test_dry_run_prints_the_plan_and_changes_nothing(settings: Settings, group: str) -> None:
    code, out = _reset(settings, "--group", group, "--to-earliest", "--dry-run")
    assert code == 0, out
    assert _committed(settings, group) == {0: 5, 1: 2}
    lines = out.splitlines()
    assert lines[0].split() == ["TOPIC", "PARTITION", "CURRENT", "NEW", "CHANGE"]
    assert lines[1].split() == [settings.topic, "0", "5", "0", "-5"]
    assert lines[3].split() == [settings.topic, "2", "-", "0"]
    assert "dry run" in lines[-1]


def test_refused_while_the_group_has_a_live_member(settings: Settings, group: str) -> None:
    member = Member(settings, group)
    try:
        with pytest.raises(GroupActiveError, match="1 active member"):
            plan_reset(admin_client(settings), group, settings.topic, ResetTarget("earliest"))
        with pytest.raises(GroupActiveError):
            _reset(settings, "--group", group, "--to-earliest", "--dry-run")
    finally:
        member.close()
    assert _committed(settings, group) == {0: 5, 1: 2}
    # Once the member has left, the same reset goes through.
    deadline = time.monotonic() + 60
    while True:
        try:
            moves = plan_reset(admin_client(settings), group, settings.topic, ResetTarget("earliest"))
            break
        except GroupActiveError:
            assert time.monotonic() < deadline, "the member never left the group"
            time.sleep(0.5)
    apply_reset(admin_client(settings), group, moves)
    assert _committed(settings, group) == {0: 0, 1: 0, 2: 0, 3: 0}
