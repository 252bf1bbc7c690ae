"""What the producer refuses, and how each refusal looks on the wire.

Providers raise `SignatureError` or `PayloadError` (they know nothing about HTTP); the
publisher raises `PublishError`. The HTTP layer turns each into a `Rejection`: a status
code, a JSON body `{"error": <code>, "detail": ...}` and, for 503, a `Retry-After` header.
The `code` is also the `reason` label of `hookstream_http_rejections_total`.
"""

from __future__ import annotations

import json

from hookstream.errors import HookstreamError

# Seconds a sender should wait before retrying after a 503; Fast.io backs off on its own too.
RETRY_AFTER_S = 5


class ProducerError(HookstreamError):
    """Root of the producer's own errors."""


class SignatureError(ProducerError):
    """The request is not provably from the sender: missing, wrong or stale signature."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code  # missing_signature | invalid_signature | stale_signature
        self.detail = detail


class PayloadError(ProducerError):
    """The JSON is valid but lacks what the envelope needs; `fields` names each one."""

    def __init__(self, fields: list[str], detail: str | None = None) -> None:
        self.fields = fields
        self.detail = detail or f"missing or empty required fields: {', '.join(fields)}"
        super().__init__(self.detail)


class PublishError(ProducerError):
    """Kafka did not acknowledge the record in time (`timeout`) or refused it (`error`)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class Rejection(Exception):
    """An HTTP error response, raised anywhere in the request path and rendered once."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: list[tuple[str, str]] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or []
        self.extra = extra or {}

    def body(self) -> bytes:
        return json.dumps({"error": self.code, "detail": self.detail, **self.extra}).encode()

    @classmethod
    def from_signature(cls, exc: SignatureError) -> Rejection:
        return cls(401, exc.code, exc.detail)

    @classmethod
    def from_payload(cls, exc: PayloadError) -> Rejection:
        return cls(422, "missing_fields", exc.detail, extra={"fields": exc.fields})

    @classmethod
    def unavailable(cls, detail: str) -> Rejection:
        return cls(503, "kafka_unavailable", detail, headers=[("Retry-After", str(RETRY_AFTER_S))])
