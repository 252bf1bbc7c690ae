"""The one reader of a moment typed on the command line: an ISO 8601 time or an age."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hookstream.errors import HookstreamError

_AGE = re.compile(r"\s*(\d+)\s*([smhd])\s*")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class MomentError(HookstreamError):
    """Neither an ISO time nor an age."""


def parse_moment(text: str, option: str, now: datetime | None = None) -> datetime:
    """`text` as a moment: an ISO 8601 time (UTC when no zone is given, the zone of Kafka's
    record timestamps) or an age before `now` like 30m, 2h, 1d. `option` names the flag in errors."""
    match = _AGE.fullmatch(text)
    if match:
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise MomentError(
            f"{option} {text!r} is neither an ISO time (2026-05-01T12:00:00Z) nor an age (30m, 2h, 1d)"
        ) from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
