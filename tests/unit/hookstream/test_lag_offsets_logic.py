"""The arithmetic of lag and the validation of reset targets, without a broker."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from hookstream.lag import GroupLag, next_offset, partition_lag
from hookstream.offsets import ResetTarget
from hookstream.offsets_cli import _lag_table, offsets

P = ("events", 0)


@pytest.mark.parametrize(
    ("committed", "start", "expected"),
    [
        (None, 0, 0),  # never committed: starts at the first record
        (None, 7, 7),
        (5, 0, 5),
        (3, 10, 10),  # committed offset already deleted by retention: the first retained record
    ],
)
def test_next_offset(committed: int | None, start: int, expected: int) -> None:
    assert next_offset(committed, start) == expected


def test_partition_lag_is_age_of_the_record_at_the_committed_offset() -> None:
    stamps = {(P, 4): 1000.0, (P, 5): 1090.0}
    row = partition_lag("g", P, 4, (0, 9), stamps, now=1100.0)
    assert (row.committed, row.end, row.lag_messages, row.lag_seconds) == (4, 9, 5, 100.0)


def test_caught_up_is_zero_in_both_units_even_without_a_timestamp() -> None:
    row = partition_lag("g", P, 9, (0, 9), {}, now=1100.0)
    assert (row.lag_messages, row.lag_seconds) == (0, 0.0)


def test_unreadable_record_leaves_seconds_unknown_and_clock_skew_is_not_negative() -> None:
    assert partition_lag("g", P, 1, (0, 3), {}, now=5.0).lag_seconds is None
    assert partition_lag("g", P, 1, (0, 3), {(P, 1): 10.0}, now=5.0).lag_seconds == 0.0


def test_table_marks_missing_commits_and_unknown_ages() -> None:
    rows = (
        partition_lag("g", P, None, (0, 2), {}, now=0.0),
        partition_lag("g", ("events", 1), 3, (0, 3), {}, 0.0),
    )
    lines = _lag_table([GroupLag("g", rows)]).splitlines()
    assert lines[0].split() == ["GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG", "LAG_SECONDS"]
    assert lines[1].split() == ["g", "events", "0", "-", "2", "2", "?"]
    assert lines[2].split() == ["g", "events", "1", "3", "3", "0", "0.0"]
    assert _lag_table([]) == "no consumer group has committed offsets yet"


def test_reset_target_rules() -> None:
    assert ResetTarget("datetime", datetime(2024, 5, 1, tzinfo=UTC)).describe() == "2024-05-01T00:00:00+00:00"
    with pytest.raises(ValueError, match="timezone"):
        ResetTarget("datetime", datetime(2024, 5, 1))
    with pytest.raises(ValueError, match="needs `at`"):
        ResetTarget("datetime")
    with pytest.raises(ValueError, match="needs `at`"):
        ResetTarget("earliest", datetime(2024, 5, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--to-earliest", "--to-latest"], "give exactly one of --to-datetime T, --to-earliest, --to-latest"),
        ([], "give exactly one of --to-datetime T, --to-earliest, --to-latest"),
        (["--to-datetime", "yesterday"], "'yesterday' is neither an ISO time"),
    ],
)
def test_reset_usage_errors_never_reach_kafka(args: list[str], message: str) -> None:
    # An unreachable broker proves the check happens before any Kafka call.
    env = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    result = CliRunner().invoke(offsets, ["reset", "--group", "g", *args], env=env)
    assert result.exit_code == 2
    assert message in result.output
