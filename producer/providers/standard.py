"""Standard Webhooks (standardwebhooks.com): `webhook-id`, `webhook-timestamp` and
`webhook-signature: v1,<base64> [v1,<base64> ...]`, signed by the `standardwebhooks` package.

The package computes each configured secret's signature; its own `Webhook.verify` is not used
because it checks the timestamp against the wall clock with a fixed five minutes (not
HOOKSTREAM_TIMESTAMP_TOLERANCE_S) and raises one error for every refusal, where the producer
answers missing_signature, stale_signature and invalid_signature apart.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from standardwebhooks.webhooks import Webhook

from hookstream.errors import ConfigError
from producer.errors import SignatureError
from producer.providers.base import (
    Headers,
    ParsedEvent,
    Provider,
    any_match,
    check_timestamp,
    require,
    require_object,
    text,
    timestamp_value,
)

SECRET_PREFIX = "whsec_"


def decode_secret(secret: str) -> bytes:
    """The key of a `whsec_<base64>` secret. Stricter than the package, which drops stray
    characters: a mistyped secret fails at start instead of refusing every request."""
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(
            "STANDARD_WEBHOOK_SECRET must be whsec_<base64>, as the sender's dashboard shows it"
        ) from exc


def _signature(webhook: Webhook, msg_id: str, timestamp: int, body: str) -> str:
    """The base64 part of the package's `v1,<base64>`."""
    return webhook.sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body).partition(",")[2]


def sign(body: bytes, secret: str, msg_id: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    """The three headers a Standard Webhooks sender would send with `body`."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    t = int(time.time()) if timestamp is None else timestamp
    signature = _signature(Webhook(decode_secret(secret)), msg_id, t, body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(t), "webhook-signature": f"v1,{signature}"}


class StandardProvider(Provider):
    def __init__(self, secrets: tuple[str, ...], **options: Any) -> None:
        super().__init__(secrets, **options)
        self.webhooks = tuple(Webhook(key) for key in self.keys)

    @staticmethod
    def key_from_secret(secret: str) -> bytes:
        return decode_secret(secret)

    def verify(self, body: bytes, headers: Headers, now: float) -> str:
        msg_id = headers.get("webhook-id")
        header = headers.get("webhook-signature")
        raw_timestamp = headers.get("webhook-timestamp")
        if not (msg_id and header and raw_timestamp):
            raise SignatureError(
                "missing_signature", "webhook-id, webhook-timestamp and webhook-signature are all required"
            )
        timestamp = check_timestamp(raw_timestamp, now, self.tolerance_s)
        try:
            text_body = body.decode()
        except UnicodeDecodeError:
            # The scheme signs text: no sender could have signed these bytes.
            raise SignatureError(
                "invalid_signature", "the body is not UTF-8, so it is not what was signed"
            ) from None
        expected = [_signature(webhook, msg_id, timestamp, text_body) for webhook in self.webhooks]
        # Entries other than v1 (e.g. v1a, asymmetric) are not ours to check.
        given = [
            sig for version, _, sig in (entry.partition(",") for entry in header.split()) if version == "v1"
        ]
        if not any_match(expected, given):
            raise SignatureError("invalid_signature", "no v1 entry in webhook-signature matches the body")
        return "standard"

    def parse(self, document: Any, headers: Headers) -> ParsedEvent:
        doc = require_object(document)
        found = require({"webhook-id": text(headers.get("webhook-id")), "type": text(doc.get("type"))})
        event_id = found["webhook-id"]
        return ParsedEvent(
            event_id=event_id,
            event_type=found["type"],
            partition_key=self.partition_key(doc, event_id),
            occurred_at=timestamp_value(doc.get("timestamp")),
        )
