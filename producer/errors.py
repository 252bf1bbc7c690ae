"""What the producer refuses, and how each refusal looks on the wire.

Providers raise `SignatureError` or `PayloadError` (they know nothing about HTTP); the
publisher raises `PublishError`. The HTTP layer turns each into a `Rejection`: a status
code, a JSON body `{"error": <code>, "detail": ...}` and, for 503, a `Retry-After` header.
The `code` is also the `reason` label of `hookstream_http_rejections_total`.
"""

from __future__ import annotations

import json

from flask import Response
from werkzeug.exceptions import HTTPException, InternalServerError

from hookstream.errors import HookstreamError

# Seconds a sender should wait before retrying after a 503; Fast.io backs off on its own too.
RETRY_AFTER_S = 5

# Every `code` a refusal can carry: the `reason` label values, created at zero at start.
REASONS = (
    "missing_signature",
    "invalid_signature",
    "stale_signature",
    "unknown_provider",
    "provider_disabled",
    "not_found",  # from routing: a path under /webhooks/ that is no webhook URL (/webhooks/a/b)
    "method_not_allowed",
    "body_too_large",
    "unsupported_media_type",
    "bad_request",
    "invalid_json",
    "missing_fields",
    "kafka_unavailable",
    "internal_error",
)


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


class RecordTooLarge(PublishError):
    """The record is larger than the client or the topic accepts: no retry will fit it (413)."""


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

    def response(self) -> Response:
        return Response(self.body(), self.status, self.headers, content_type="application/json")

    @classmethod
    def from_signature(cls, exc: SignatureError) -> Rejection:
        return cls(401, exc.code, exc.detail)

    @classmethod
    def from_payload(cls, exc: PayloadError) -> Rejection:
        return cls(422, "missing_fields", exc.detail, extra={"fields": exc.fields})

    @classmethod
    def unavailable(cls, detail: str) -> Rejection:
        return cls(503, "kafka_unavailable", detail, headers=[("Retry-After", str(RETRY_AFTER_S))])

    @classmethod
    def from_http(cls, exc: HTTPException) -> Rejection:
        """Flask's own refusals (no such route, method not allowed, a crash) in the same shape."""
        if isinstance(exc, InternalServerError):
            return cls(500, "internal_error", "unexpected server error; see logs")
        code = (exc.name or "error").lower().replace(" ", "_")
        allowed = getattr(exc, "valid_methods", None)
        headers = [("Allow", ", ".join(allowed))] if exc.code == 405 and allowed else []
        return cls(exc.code or 500, code, exc.description or code, headers=headers)
