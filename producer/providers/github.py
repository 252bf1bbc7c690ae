"""GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`.

The event id and type travel in headers (`X-GitHub-Delivery`, `X-GitHub-Event`), not the body.
"""

from __future__ import annotations

import uuid
from typing import Any

from producer.errors import SignatureError
from producer.providers.base import (
    Headers,
    ParsedEvent,
    Provider,
    any_match,
    hmac_sha256,
    require,
    require_object,
    text,
)


def sign(body: bytes, secret: str, event: str = "ping", delivery: str | None = None) -> dict[str, str]:
    """The headers GitHub would send with `body`: signature, event name and delivery id."""
    return {
        "X-Hub-Signature-256": "sha256=" + hmac_sha256(secret.encode(), body).hex(),
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
    }


class GithubProvider(Provider):
    def verify(self, body: bytes, headers: Headers, now: float) -> str:
        header = (headers.get("X-Hub-Signature-256") or "").strip()
        if not header:
            raise SignatureError("missing_signature", "no X-Hub-Signature-256 header")
        if not header.startswith("sha256="):
            raise SignatureError("invalid_signature", "X-Hub-Signature-256 must look like sha256=<hex>")
        expected = [hmac_sha256(key, body).hex() for key in self.keys]
        if not any_match(expected, [header.removeprefix("sha256=").lower()]):
            raise SignatureError("invalid_signature", "X-Hub-Signature-256 does not match the body")
        return "github"

    def parse(self, document: Any, headers: Headers) -> ParsedEvent:
        doc = require_object(document)
        found = require(
            {
                "X-GitHub-Delivery": text(headers.get("X-GitHub-Delivery")),
                "X-GitHub-Event": text(headers.get("X-GitHub-Event")),
            }
        )
        event_id = found["X-GitHub-Delivery"]
        return ParsedEvent(
            event_id=event_id,
            event_type=found["X-GitHub-Event"],
            partition_key=self.partition_key(doc, event_id),
        )
