"""What every provider shares: the parsed event, the provider interface, and small helpers.

A provider does two things, in this order, and nothing about HTTP:
  1. `verify(body, headers, now)`: prove the raw bytes came from the sender (constant-time
     comparison against every configured secret); returns the signature scheme's name.
  2. `parse(document, headers)`: pick out of the decoded JSON what the envelope needs.
"""

from __future__ import annotations

import hashlib
import hmac
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from producer.errors import PayloadError, SignatureError


class Headers(Protocol):
    """Header lookup by name: the Flask request's werkzeug `EnvironHeaders` (case-insensitive)
    in the app; tests pass a plain dict spelled as each provider spells its headers."""

    def get(self, key: str, /) -> str | None: ...


@dataclass(frozen=True, slots=True)
class ParsedEvent:
    """What a provider's payload contributes to the envelope."""

    event_id: str
    event_type: str
    partition_key: str
    object_id: str | None = None
    occurred_at: datetime | None = None


class Provider(ABC):
    def __init__(self, secrets: tuple[str, ...], tolerance_s: int = 300, key_field: str = "workspace_id"):
        self.keys = tuple(self.key_from_secret(secret) for secret in secrets)
        self.tolerance_s = tolerance_s
        self.key_field = key_field

    @staticmethod
    def key_from_secret(secret: str) -> bytes:
        """The HMAC key a configured secret stands for (Standard Webhooks decodes base64)."""
        return secret.encode()

    @abstractmethod
    def verify(self, body: bytes, headers: Headers, now: float) -> str:
        """Raise `SignatureError` unless `body` is signed by one of the keys; return the scheme."""

    @abstractmethod
    def parse(self, document: Any, headers: Headers) -> ParsedEvent:
        """Raise `PayloadError` naming every missing field; else return the event's parts."""

    def partition_key(self, document: dict[str, Any], event_id: str) -> str:
        """The configured JSON field (dotted path allowed), else the event id."""
        return text(field_path(document, self.key_field)) or event_id


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def any_match(expected: Iterable[str], given: Iterable[str]) -> bool:
    """Constant-time check that some given signature equals some expected one.

    Every pair is compared (no early exit), so timing says nothing about which came close.
    """
    given_bytes = [value.encode("latin-1", "replace") for value in given]
    matched = False
    for candidate in expected:
        candidate_bytes = candidate.encode()
        for value in given_bytes:
            matched |= hmac.compare_digest(candidate_bytes, value)
    return matched


def signature_pairs(header: str) -> list[tuple[str, str]]:
    """`t=1700000000,v1=abc,v1=def` -> [("t", "1700000000"), ("v1", "abc"), ("v1", "def")].

    Split on the first `=` only: base64 signatures end in `=` padding.
    """
    pairs = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            pairs.append((name, value))
    return pairs


def check_timestamp(raw: str | None, now: float, tolerance_s: int) -> int:
    """The signed timestamp as an int, refused when missing, malformed, or out of tolerance."""
    # isascii too: "²".isdigit() is True, and int() refuses it.
    if raw is None or not (raw := raw.strip()).isascii() or not raw.isdigit():
        raise SignatureError("invalid_signature", "the signature's timestamp is missing or not unix seconds")
    timestamp = int(raw)
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(
            "stale_signature",
            f"signature timestamp {timestamp} is more than {tolerance_s}s from the server's clock "
            "(replayed or clock skew)",
        )
    return timestamp


def text(value: Any) -> str | None:
    """A usable identifier: a non-empty string, or an integer rendered as one."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def field_path(document: Any, path: str) -> Any:
    """`field_path(doc, "repository.full_name")` walks nested objects; None when absent."""
    for name in path.split("."):
        if not isinstance(document, dict):
            return None
        document = document.get(name)
    return document


def require_object(document: Any) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise PayloadError(["(root)"], "the payload must be a JSON object")
    return document


def require(found: dict[str, str | None]) -> dict[str, str]:
    """Every value present, or a `PayloadError` naming each missing one."""
    missing = [name for name, value in found.items() if value is None]
    if missing:
        raise PayloadError(missing)
    return found  # type: ignore[return-value]


def timestamp_value(value: Any) -> datetime | None:
    """A sender's event time: unix seconds (or milliseconds), or ISO 8601; None if unreadable.

    It is informational (the raw payload is kept whole), so an odd value is not an error.
    """
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000 if value > 1e11 else value
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str) and value:
            parsed = datetime.fromisoformat(value)  # Python 3.11 reads a trailing Z too
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None
