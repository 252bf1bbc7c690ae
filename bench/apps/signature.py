"""The one signature check every comparison app does: Fast.io's hex HMAC-SHA256 of the raw body."""

from __future__ import annotations

import hashlib
import hmac

from hookstream.settings import Settings

PATH = "/webhooks/fastio"


def secret_key(settings: Settings) -> bytes:
    if not settings.secrets.fastio:
        raise SystemExit("FASTIO_WEBHOOK_SECRET is not set: the bench apps need the signing secret")
    return settings.secrets.fastio[0].encode()


def valid(body: bytes, header: str | None, key: bytes) -> bool:
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header or "")
