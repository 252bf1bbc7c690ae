"""Fast.io: three signature forms seen in its public material, all HMAC-SHA256.

  hex          X-Fastio-Signature: <hex HMAC of the raw body>
  sha256       X-Fastio-Signature or Fastio-Signature: sha256=<hex HMAC of the raw body>
  timestamped  Fastio-Signature: t=<unix seconds>,v1=<base64 HMAC of "<t>.<raw body>">

`auto` (the default) accepts any of them, told apart by the header's shape; a deployment can
pin one with HOOKSTREAM_FASTIO_SIGNATURE_FORMAT.
"""

from __future__ import annotations

import base64
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

FORMATS = ("hex", "sha256", "timestamped")


def sign(body: bytes, secret: str, form: str = "sha256", timestamp: int | None = None) -> dict[str, str]:
    """The signature header Fast.io would send for `body` in `form` (hex|sha256|timestamped)."""
    key = secret.encode()
    if form == "hex":
        return {"X-Fastio-Signature": hmac_sha256(key, body).hex()}
    if form == "sha256":
        return {"Fastio-Signature": "sha256=" + hmac_sha256(key, body).hex()}
    if form == "timestamped":
        t = int(time.time()) if timestamp is None else timestamp
        digest = base64.b64encode(hmac_sha256(key, f"{t}.".encode() + body)).decode()
        return {"Fastio-Signature": f"t={t},v1={digest}"}
    raise ValueError(f"unknown Fast.io signature form {form!r}; use one of {', '.join(FORMATS)}")


def form_of(header: str) -> str:
    if header.startswith("t="):
        return "timestamped"
    if header.startswith("sha256="):
        return "sha256"
    return "hex"


class FastioProvider(Provider):
    def __init__(self, secrets: tuple[str, ...], signature_format: str = "auto", **options: Any) -> None:
        super().__init__(secrets, **options)
        self.signature_format = signature_format

    def verify(self, body: bytes, headers: Headers, now: float) -> str:
        header = (headers.get("Fastio-Signature") or headers.get("X-Fastio-Signature") or "").strip()
        if not header:
            raise SignatureError("missing_signature", "no Fastio-Signature or X-Fastio-Signature header")
        form = form_of(header)
        if self.signature_format not in ("auto", form):
            raise SignatureError(
                "invalid_signature",
                f"a {form} signature was sent but this server accepts only {self.signature_format}",
            )
        if form == "timestamped":
            pairs = signature_pairs(header)
            timestamp = check_timestamp(dict(pairs).get("t"), now, self.tolerance_s)
            signed = f"{timestamp}.".encode() + body
            expected = [base64.b64encode(hmac_sha256(key, signed)).decode() for key in self.keys]
            given = [value for name, value in pairs if name == "v1"]
        else:
            expected = [hmac_sha256(key, body).hex() for key in self.keys]
            given = [header.removeprefix("sha256=").lower()]
        if not any_match(expected, given):
            raise SignatureError("invalid_signature", f"the {form} signature does not match the body")
        return form

    def parse(self, document: Any, headers: Headers) -> ParsedEvent:
        doc = require_object(document)
        found = require(
            {
                "event_id": text(doc.get("event_id")),
                # Older payloads name the event `event_type`.
                "event": text(doc.get("event")) or text(doc.get("event_type")),
                "workspace_id": text(doc.get("workspace_id")),
            }
        )
        return ParsedEvent(
            event_id=found["event_id"],
            event_type=found["event"],
            partition_key=found["workspace_id"],
            object_id=text(doc.get("object_id")) or text(field_path(doc, "resource.id")),
            occurred_at=timestamp_value(doc.get("created") or doc.get("created_at")),
        )
