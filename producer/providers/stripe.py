"""Stripe: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]` over `"<t>.<raw body>"`.

Several `v1` entries appear while Stripe rolls a secret; any one matching is enough.
"""

from __future__ import annotations

import time
from typing import Any

from producer.errors import SignatureError
from producer.providers.base import (
    Headers,
    ParsedEvent,
    Provider,
    any_match,
    check_timestamp,
    field_path,
    hmac_sha256,
    require,
    require_object,
    signature_pairs,
    text,
    timestamp_value,
)


def sign(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The `Stripe-Signature` header Stripe would send with `body`."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac_sha256(secret.encode(), f"{t}.".encode() + body).hex()
    return {"Stripe-Signature": f"t={t},v1={digest}"}


class StripeProvider(Provider):
    def verify(self, body: bytes, headers: Headers, now: float) -> str:
        header = (headers.get("Stripe-Signature") or "").strip()
        if not header:
            raise SignatureError("missing_signature", "no Stripe-Signature header")
        pairs = signature_pairs(header)
        timestamp = check_timestamp(dict(pairs).get("t"), now, self.tolerance_s)
        signed = f"{timestamp}.".encode() + body
        expected = [hmac_sha256(key, signed).hex() for key in self.keys]
        given = [value.lower() for name, value in pairs if name == "v1"]
        if not any_match(expected, given):
            raise SignatureError("invalid_signature", "no v1 signature in Stripe-Signature matches the body")
        return "stripe"

    def parse(self, document: Any, headers: Headers) -> ParsedEvent:
        doc = require_object(document)
        found = require({"id": text(doc.get("id")), "type": text(doc.get("type"))})
        return ParsedEvent(
            event_id=found["id"],
            event_type=found["type"],
            partition_key=self.partition_key(doc, found["id"]),
            object_id=text(field_path(doc, "data.object.id")),
            occurred_at=timestamp_value(doc.get("created")),
        )
