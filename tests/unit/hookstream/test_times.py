"""The command line's one reader of a moment: ISO times and ages."""

from datetime import UTC, datetime, timedelta

import pytest

from hookstream.times import MomentError, parse_moment

NOW = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)


def test_ages_count_back_from_now() -> None:
    assert parse_moment("90m", "--since", NOW) == NOW - timedelta(minutes=90)
    assert parse_moment(" 2d ", "--since", NOW) == NOW - timedelta(days=2)
    assert parse_moment("45s", "--since", NOW) == NOW - timedelta(seconds=45)
    assert parse_moment("3h", "--since", NOW) == NOW - timedelta(hours=3)


def test_iso_times_are_utc_unless_they_say_otherwise() -> None:
    assert parse_moment("2026-05-01T10:00:00Z", "--since") == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert parse_moment("2026-05-01T10:00:00", "--since") == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert parse_moment("2026-05-01T12:00:00+02:00", "--since") == datetime(2026, 5, 1, 10, tzinfo=UTC)


def test_anything_else_names_the_option_and_both_forms() -> None:
    with pytest.raises(MomentError, match=r"--to-datetime 'yesterday' is neither an ISO time .* nor an age"):
        parse_moment("yesterday", "--to-datetime")
