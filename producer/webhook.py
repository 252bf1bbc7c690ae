"""POST /webhooks/<provider> (and /webhook/fastio): the hot path, as a bare ASGI coroutine.

It runs on the worker's event loop and never leaves it: HTTP is parsed in C (httptools on
uvloop, see `producer.worker`), and a request only suspends to read its body and to await
Kafka's ack. In order, each step failing with its status: provider known and enabled (404),
POST (405), Content-Length within the limit (413), JSON content type (415), body read within
the limit (413), signature on the raw bytes (401), JSON (400), required fields (422), then the
Kafka ack (else 503). Every answer is counted and logged as one JSON line without secrets,
signatures or payload. The steps between reading and publishing are plain functions.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from hookstream.errors import SchemaError
from hookstream.settings import Settings
from producer import metrics
from producer.dedupe import Claim, Deduper
from producer.errors import PayloadError, PublishError, Rejection, SignatureError
from producer.providers import PROVIDERS
from producer.providers.base import ParsedEvent, Provider
from producer.publisher import Header, Publisher
from schemas.codec import Envelope, encode

log = logging.getLogger("producer.webhook")

WEBHOOKS_PREFIX = "/webhooks/"
FASTIO_ALIAS = "/webhook/fastio"  # the URL Fast.io's guides use

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Record = tuple[bytes, bytes, list[Header]]  # key, value, headers

# Header names in their usual case: HTTP says case does not matter, but some clients compare.
_JSON = (b"Content-Type", b"application/json")


def is_webhook_path(path: str) -> bool:
    return path.startswith(WEBHOOKS_PREFIX) or path == FASTIO_ALIAS


class RequestHeaders:
    """Case-insensitive access to an ASGI request's headers (the `Headers` providers read).

    Repeated headers are joined with commas, as a WSGI server joins them.
    """

    __slots__ = ("_values",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        values: dict[str, str] = {}
        for raw_name, raw_value in raw:
            name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
            values[name] = f"{values[name]},{value}" if name in values else value
        self._values = values

    def get(self, key: str, /) -> str | None:
        return self._values.get(key.lower())


class WebhookEndpoint:
    def __init__(
        self, settings: Settings, providers: dict[str, Provider], publisher: Publisher, deduper: Deduper
    ) -> None:
        self.providers = providers
        self.publisher = publisher
        self.deduper = deduper
        self.max_body_bytes = settings.max_body_bytes
        self.wait_s = settings.delivery_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path = scope["path"]
        name = "fastio" if path == FASTIO_ALIAS else path[len(WEBHOOKS_PREFIX) :]
        # Only known names become label values: a scanner must not mint new time series.
        label = name if name in PROVIDERS else "unknown"
        metrics.IN_FLIGHT.inc()
        event_id: str | None = None
        duplicate = False
        try:
            event_id, duplicate = await self._accept(name, scope, receive)
            status, body, headers = 200, accepted_body(event_id, duplicate), [_JSON]
        except Rejection as rejection:
            status, body, headers = rejection.status, rejection.body(), _encoded(rejection.headers)
            metrics.REJECTIONS.labels(label, rejection.code).inc()
        except Exception:
            log.exception("webhook failed", extra={"fields": {"provider": label}})
            status, body = 500, Rejection(500, "internal_error", "unexpected server error; see logs").body()
            headers = [_JSON]
            metrics.REJECTIONS.labels(label, "internal_error").inc()
        finally:
            metrics.IN_FLIGHT.dec()
        elapsed = time.perf_counter() - started
        metrics.observe_request(label, status, elapsed)
        if duplicate:
            metrics.DUPLICATES.labels(label).inc()
        _log_answer(label, event_id, status, duplicate, elapsed)
        headers.append((b"Content-Length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _accept(self, name: str, scope: Scope, receive: Receive) -> tuple[str, bool]:
        """The event id and whether it was a duplicate; anything else raises a `Rejection`."""
        provider = self.providers.get(name)
        if provider is None:
            raise _no_such_provider(name)
        if scope["method"] != "POST":
            raise Rejection(405, "method_not_allowed", "webhooks are POSTed", headers=[("Allow", "POST")])
        headers = RequestHeaders(scope["headers"])
        check_announced(headers, self.max_body_bytes)
        body = await read_body(receive, self.max_body_bytes)
        scheme, event = verify_and_parse(provider, body, headers, time.time())
        record = build_record(name, scheme, event, body)
        return event.event_id, await self._publish_once(f"{name}:{event.event_id}", record)

    async def _publish_once(self, key: str, record: Record) -> bool:
        """Publish unless this event was accepted recently; True when it was (a duplicate)."""
        claim = await self.deduper.claim(key, self.wait_s)
        if claim is Claim.SEEN:
            return True
        if claim is Claim.FAILED:
            raise Rejection.unavailable("an earlier copy of this event was not acknowledged by Kafka; retry")
        accepted = False
        try:
            await self.publisher.publish(*record)
            accepted = True
        except PublishError as exc:
            raise Rejection.unavailable(exc.detail) from exc
        finally:
            self.deduper.settle(key, accepted)
        return False


def check_announced(headers: RequestHeaders, limit: int) -> None:
    """Refuse before reading: an announced body over the limit (413), a type that is not JSON
    (415), a Content-Length that is not a number (400)."""
    raw_length = headers.get("content-length")
    if raw_length and raw_length.isdigit() and int(raw_length) > limit:
        raise _too_large(f"Content-Length {raw_length} exceeds the {limit}-byte limit")
    media_type = (headers.get("content-type") or "").partition(";")[0].strip().lower()
    if not (
        media_type == "application/json"
        or (media_type.startswith("application/") and media_type.endswith("+json"))
    ):
        detail = f"Content-Type must be application/json, not {media_type or 'none'}"
        raise Rejection(415, "unsupported_media_type", detail)
    if raw_length and not raw_length.isdigit():
        raise Rejection(400, "bad_request", "Content-Length is not a number")


async def read_body(receive: Receive, limit: int) -> bytes:
    """The raw body, counted while it arrives (chunked or not) and cut off past the limit."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Rejection(400, "bad_request", "the client closed the connection before the body ended")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(f"the body exceeds the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def verify_and_parse(
    provider: Provider, body: bytes, headers: RequestHeaders, now: float
) -> tuple[str, ParsedEvent]:
    """The signature scheme and the event: the signature on the raw bytes first (401), then
    JSON (400), then the provider's required fields (422)."""
    try:
        scheme = provider.verify(body, headers, now)
    except SignatureError as exc:
        raise Rejection.from_signature(exc) from exc
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise Rejection(400, "invalid_json", "the body is not valid JSON") from exc
    try:
        return scheme, provider.parse(document, headers)
    except PayloadError as exc:
        raise Rejection.from_payload(exc) from exc


def build_record(name: str, scheme: str, event: ParsedEvent, body: bytes) -> Record:
    """The Kafka record: keyed by the partition key, the Avro envelope as value."""
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
        return envelope.workspace_id.encode(), encode(envelope), envelope.headers()
    except (SchemaError, UnicodeEncodeError) as exc:
        raise Rejection(400, "invalid_json", "the payload's identifiers are not valid Unicode") from exc


def accepted_body(event_id: str, duplicate: bool) -> bytes:
    return json.dumps({"status": "accepted", "event_id": event_id, "duplicate": duplicate}).encode()


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


def _encoded(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [_JSON, *((name.encode(), value.encode("latin-1")) for name, value in headers)]


def _no_such_provider(name: str) -> Rejection:
    if name in PROVIDERS:
        detail = f"provider {name!r} has no secret configured on this server"
        return Rejection(404, "provider_disabled", detail)
    return Rejection(404, "unknown_provider", f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}")


def _too_large(detail: str) -> Rejection:
    # The unread rest of the body never reaches the app; the server discards it before the
    # connection's next request (a proxy's own body limit stops it earlier still).
    return Rejection(413, "body_too_large", detail)
