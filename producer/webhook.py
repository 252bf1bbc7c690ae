"""POST /webhooks/<provider> (and /webhook/fastio): the hot path, as a bare WSGI callable.

Flask's request machinery costs about 40% of a small request here, and this path uses none
of it, so it reads the WSGI environ directly. In order, each step failing with its status:
provider known and enabled (404), POST (405), Content-Length within the limit (413),
JSON content type (415), body read within the limit (413), signature on the raw bytes
(401), JSON (400), required fields (422), then the Kafka ack (else 503). Every answer is
counted and logged as one JSON line without secrets, signatures or payload.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import EnvironHeaders

from hookstream.errors import SchemaError
from hookstream.settings import Settings
from producer import metrics
from producer.dedupe import Claim, Deduper
from producer.errors import PayloadError, PublishError, Rejection, SignatureError
from producer.providers import PROVIDERS
from producer.providers.base import ParsedEvent, Provider
from producer.publisher import Publisher
from schemas.codec import Envelope, encode

log = logging.getLogger("producer.webhook")

WEBHOOKS_PREFIX = "/webhooks/"
FASTIO_ALIAS = "/webhook/fastio"  # the URL Fast.io's guides use
_STATUS_LINES = {
    200: "200 OK",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    413: "413 Content Too Large",
    415: "415 Unsupported Media Type",
    422: "422 Unprocessable Content",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
}
_READ_CHUNK = 64 * 1024

StartResponse = Any  # WSGI's start_response callable


def is_webhook_path(path: str) -> bool:
    return path.startswith(WEBHOOKS_PREFIX) or path == FASTIO_ALIAS


class WebhookEndpoint:
    def __init__(
        self, settings: Settings, providers: dict[str, Provider], publisher: Publisher, deduper: Deduper
    ) -> None:
        self.providers = providers
        self.publisher = publisher
        self.deduper = deduper
        self.max_body_bytes = settings.max_body_bytes
        self.wait_s = settings.delivery_timeout_s

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        path = environ.get("PATH_INFO", "")
        name = "fastio" if path == FASTIO_ALIAS else path[len(WEBHOOKS_PREFIX) :]
        # Only known names become label values: a scanner must not mint new time series.
        label = name if name in PROVIDERS else "unknown"
        metrics.IN_FLIGHT.inc()
        event_id: str | None = None
        duplicate = False
        try:
            event_id, duplicate = self._accept(name, environ)
            status = 200
            body = json.dumps({"status": "accepted", "event_id": event_id, "duplicate": duplicate}).encode()
            headers = [("Content-Type", "application/json")]
        except Rejection as rejection:
            status, body, headers = rejection.status, rejection.body(), rejection.headers
            headers.append(("Content-Type", "application/json"))
            metrics.REJECTIONS.labels(label, rejection.code).inc()
        except Exception:
            log.exception("webhook failed", extra={"fields": {"provider": label}})
            status, body = 500, Rejection(500, "internal_error", "unexpected server error; see logs").body()
            headers = [("Content-Type", "application/json")]
            metrics.REJECTIONS.labels(label, "internal_error").inc()
        finally:
            metrics.IN_FLIGHT.dec()
        elapsed = time.perf_counter() - started
        metrics.observe_request(label, status, elapsed)
        if duplicate:
            metrics.DUPLICATES.labels(label).inc()
        _log_answer(label, event_id, status, duplicate, elapsed)
        headers.append(("Content-Length", str(len(body))))
        start_response(_STATUS_LINES[status], headers)
        return [body]

    def _accept(self, name: str, environ: dict[str, Any]) -> tuple[str, bool]:
        """The event id and whether it was a duplicate; anything else raises a `Rejection`."""
        provider = self.providers.get(name)
        if provider is None:
            known = name in PROVIDERS
            raise Rejection(
                404,
                "provider_disabled" if known else "unknown_provider",
                f"provider {name!r} has no secret configured on this server"
                if known
                else f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}",
            )
        if environ["REQUEST_METHOD"] != "POST":
            raise Rejection(405, "method_not_allowed", "webhooks are POSTed", headers=[("Allow", "POST")])
        body = self._read_body(environ)
        headers = EnvironHeaders(environ)
        try:
            scheme = provider.verify(body, headers, time.time())
        except SignatureError as exc:
            raise Rejection.from_signature(exc) from exc
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise Rejection(400, "invalid_json", "the body is not valid JSON") from exc
        try:
            event = provider.parse(document, headers)
        except PayloadError as exc:
            raise Rejection.from_payload(exc) from exc
        return event.event_id, self._publish_once(name, scheme, event, body)

    def _publish_once(self, name: str, scheme: str, event: ParsedEvent, body: bytes) -> bool:
        """Publish unless this event_id was accepted recently; True when it was (a duplicate)."""
        key = f"{name}:{event.event_id}"
        claim = self.deduper.claim(key, self.wait_s)
        if claim is Claim.SEEN:
            return True
        if claim is Claim.FAILED:
            raise Rejection.unavailable("an earlier copy of this event was not acknowledged by Kafka; retry")
        accepted = False
        try:
            envelope = Envelope(
                event_id=event.event_id,
                provider=name,
                event_type=event.event_type,
                workspace_id=event.partition_key,
                payload=body,
                received_at=datetime.now(UTC),
                object_id=event.object_id,
                occurred_at=event.occurred_at,
                signature_scheme=scheme,
            )
            try:
                key_bytes, value, headers = (
                    envelope.workspace_id.encode(),
                    encode(envelope),
                    envelope.headers(),
                )
            except (SchemaError, UnicodeEncodeError) as exc:
                raise Rejection(
                    400, "invalid_json", "the payload's identifiers are not valid Unicode"
                ) from exc
            self.publisher.publish(key_bytes, value, headers)
            accepted = True
        except PublishError as exc:
            raise Rejection.unavailable(exc.detail) from exc
        finally:
            self.deduper.settle(key, accepted)
        return False

    def _read_body(self, environ: dict[str, Any]) -> bytes:
        """The raw body, never more than the limit: refused up front by Content-Length, and
        counted while reading a chunked or unannounced one."""
        limit = self.max_body_bytes
        raw_length = environ.get("CONTENT_LENGTH")
        if raw_length and raw_length.isdigit() and int(raw_length) > limit:
            raise _too_large(f"Content-Length {raw_length} exceeds the {limit}-byte limit")
        media_type = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        if not (
            media_type == "application/json"
            or (media_type.startswith("application/") and media_type.endswith("+json"))
        ):
            raise Rejection(
                415,
                "unsupported_media_type",
                f"Content-Type must be application/json, not {media_type or 'none'}",
            )
        stream = environ["wsgi.input"]
        if raw_length:
            if not raw_length.isdigit():
                raise Rejection(400, "bad_request", "Content-Length is not a number")
            return stream.read(int(raw_length))
        chunks, size = [], 0
        while chunk := stream.read(min(_READ_CHUNK, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                raise _too_large(f"the body exceeds the {limit}-byte limit")
        return b"".join(chunks)


def _log_answer(provider: str, event_id: str | None, status: int, duplicate: bool, elapsed: float) -> None:
    """One JSON line per webhook. Built directly rather than through `log.info`, which would
    walk the stack to find the caller's file and line: a noticeable cost at this rate."""
    if not log.isEnabledFor(logging.INFO):
        return
    fields = {
        "provider": provider,
        "event_id": event_id,
        "status": status,
        "duplicate": duplicate,
        "latency_ms": round(elapsed * 1000, 2),
    }
    extra = {"fields": fields}
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, "webhook", (), None, extra=extra)
    log.handle(record)


def _too_large(detail: str) -> Rejection:
    # The unread rest of the body never reaches the app; gunicorn discards it before the
    # connection's next request (a proxy's own body limit stops it earlier still).
    return Rejection(413, "body_too_large", detail)
