"""Standard Webhooks (standardwebhooks.com): `webhook-id`, `webhook-timestamp` and
`webhook-signature: v1,<base64> [v1,<base64> ...]` over `"<id>.<timestamp>.<raw body>"`.

Secrets are `whsec_<base64 key>`; the HMAC key is the decoded bytes.
"""

from __future__ import annotations

import base64
import binascii
import time
import uuid
from typing import Any

from hookstream.errors import ConfigError
from producer.errors import SignatureError
from producer.providers.base import (
    Headers,
    ParsedEvent,
    Provider,
    any_match,
    check_timestamp,
    hmac_sha256,
    require,
    require_object,
    text,
    timestamp_value,
)

SECRET_PREFIX = "whsec_"


def decode_secret(secret: str) -> bytes:
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(
            "STANDARD_WEBHOOK_SECRET must be whsec_<base64>, as the sender's dashboard shows it"
        ) from exc


def sign(body: bytes, secret: str, msg_id: str | None = None, timestamp: int | None = None) -> dict[str, str]:
    """The three headers a Standard Webhooks sender would send with `body`."""
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    t = int(time.time()) if timestamp is None else timestamp
    digest = base64.b64encode(hmac_sha256(decode_secret(secret), f"{msg_id}.{t}.".encode() + body))
    return {"webhook-id": msg_id, "webhook-timestamp": str(t), "webhook-signature": f"v1,{digest.decode()}"}


class StandardProvider(Provider):
    name = "standard"

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
        signed = f"{msg_id}.{timestamp}.".encode() + body
        expected = [base64.b64encode(hmac_sha256(key, signed)).decode() for key in self.keys]
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
