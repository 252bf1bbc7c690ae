"""POST /webhooks/<provider> (and /webhook/fastio): the webhooks blueprint.

In order, each step failing with its status: POST to a webhook URL (405 and 404, from Flask's
routing), provider known and enabled (404), Content-Length within the limit (413), JSON content
type (415), body read within the limit (413), signature on the raw bytes (401), JSON (400),
required fields (422), then Kafka's ack (else 503; 413 for a record Kafka will never take). A
refusal is raised as a `Rejection` and rendered by the app's one error handler; every answer on
a webhook URL, refusals by routing included, is counted and logged as one JSON line (without
secrets, signatures or payload) by this blueprint's app-wide hooks. The steps between reading
and publishing are plain functions.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, g, request

from hookstream.errors import SchemaError, SchemaRegistryUnavailable
from producer import metrics
from producer.dedupe import Claim, Deduper
from producer.errors import PayloadError, PublishError, RecordTooLarge, Rejection, SignatureError
from producer.providers import PROVIDERS
from producer.providers.base import Headers, ParsedEvent, Provider
from producer.publisher import Header, Publisher
from schemas.codec import Envelope
from schemas.serializer import Serializer

log = logging.getLogger("producer.webhook")

WEBHOOKS_PREFIX = "/webhooks/"
FASTIO_ALIAS = "/webhook/fastio"  # the URL Fast.io's guides use
CHUNK = 64 * 1024  # read size of a body without Content-Length (a chunked upload)
_REQUEST_ID_MAX = 128  # the gateway's id is logged; a client's arbitrary header is cut short

Record = tuple[bytes, bytes, list[Header]]  # key, value, headers
# Providers whose partition key is a workspace (envelope v3's workspace_id); the others have none.
_WORKSPACE_PROVIDERS = frozenset({"fastio"})


def is_webhook_path(path: str) -> bool:
    return path.startswith(WEBHOOKS_PREFIX) or path == FASTIO_ALIAS


def provider_label(path: str) -> str:
    """The provider in a webhook URL, or "unknown": a scanner must not mint new time series."""
    name = "fastio" if path == FASTIO_ALIAS else path[len(WEBHOOKS_PREFIX) :]
    return name if name in PROVIDERS else "unknown"


class Receiver:
    """What a webhook needs, built once per app: the enabled providers, Kafka, the dedupe store."""

    def __init__(
        self,
        providers: dict[str, Provider],
        publisher: Publisher,
        deduper: Deduper,
        max_body_bytes: int,
        serializer: Serializer,
    ) -> None:
        self.providers = providers
        self.serializer = serializer
        self.publisher = publisher
        self.deduper = deduper
        self.max_body_bytes = max_body_bytes
        self.wait_s = publisher.timeout_s

    def receive(self, name: str) -> Response:
        provider = self.providers.get(name)
        if provider is None:
            raise _no_such_provider(name)
        headers = request.headers
        check_announced(headers, self.max_body_bytes)
        body = read_body(request.environ, self.max_body_bytes)
        scheme, event = verify_and_parse(provider, body, headers, time.time())
        g.event_id = event.event_id
        record = build_record(name, scheme, event, body, self.serializer)
        g.duplicate = duplicate = self._publish_once(f"{name}:{event.event_id}", record)
        return Response(accepted_body(event.event_id, duplicate), content_type="application/json")

    def _publish_once(self, key: str, record: Record) -> bool:
        """Publish unless this event was accepted recently; True when it was (a duplicate). The
        wait for an earlier copy and the wait for Kafka share one deadline."""
        deadline = time.monotonic() + self.wait_s
        claim = self.deduper.claim(key, self.wait_s)
        if claim is Claim.SEEN:
            return True
        if claim is Claim.FAILED:
            raise Rejection.unavailable("an earlier copy of this event was not acknowledged by Kafka; retry")
        accepted = False
        try:
            self.publisher.publish(*record, timeout_s=max(0.0, deadline - time.monotonic()))
            accepted = True
        except RecordTooLarge as exc:  # no retry will fit it: a 503 would have it retried for days
            raise _too_large(exc.detail) from exc
        except PublishError as exc:
            raise Rejection.unavailable(exc.detail) from exc
        finally:
            self.deduper.settle(key, accepted)
        return False


def build_blueprint(receiver: Receiver) -> Blueprint:
    webhooks = Blueprint("webhooks", __name__)

    # No automatic OPTIONS: a 405 says `Allow: POST`, the one method a sender may use.
    @webhooks.post("/webhooks/<provider>", provide_automatic_options=False)
    def receive(provider: str) -> Response:
        return receiver.receive(provider)

    @webhooks.post(FASTIO_ALIAS, provide_automatic_options=False)
    def receive_fastio() -> Response:
        return receiver.receive("fastio")

    # App-wide, not the blueprint's own: a 405 from routing matched no blueprint yet still
    # answers a webhook URL, and is counted like any other refusal.
    @webhooks.before_app_request
    def start() -> None:
        if is_webhook_path(request.path):
            g.webhook_started = time.perf_counter()
            metrics.IN_FLIGHT.inc()

    @webhooks.after_app_request
    def account(response: Response) -> Response:
        started = g.pop("webhook_started", None)
        if started is None:
            return response
        metrics.IN_FLIGHT.dec()
        elapsed = time.perf_counter() - started
        label = provider_label(request.path)
        status = response.status_code
        metrics.observe_request(label, status, elapsed)
        reason = g.get("rejection")
        if reason is not None:
            metrics.REJECTIONS.labels(label, reason).inc()
        duplicate = g.get("duplicate", False)
        if duplicate:
            metrics.DUPLICATES.labels(label).inc()
        request_id = request.headers.get("X-Request-ID")
        _log_answer(label, g.get("event_id"), status, duplicate, elapsed, request_id)
        return response

    @webhooks.teardown_app_request
    def finish(_exc: BaseException | None) -> None:
        if g.pop("webhook_started", None) is not None:  # `account` did not run: the answer failed
            metrics.IN_FLIGHT.dec()

    return webhooks


def check_announced(headers: Headers, limit: int) -> None:
    """Refuse before reading: an announced body over the limit (413), a type that is not JSON
    (415), a Content-Length that is not a number (400)."""
    raw_length = headers.get("content-length") or ""
    number = raw_length.isascii() and raw_length.isdigit()  # isascii: "²".isdigit() is True too
    if number and int(raw_length) > limit:
        raise _too_large(f"Content-Length {raw_length} exceeds the {limit}-byte limit")
    media_type = (headers.get("content-type") or "").partition(";")[0].strip().lower()
    if not (
        media_type == "application/json"
        or (media_type.startswith("application/") and media_type.endswith("+json"))
    ):
        detail = f"Content-Type must be application/json, not {media_type or 'none'}"
        raise Rejection(415, "unsupported_media_type", detail)
    if raw_length and not number:
        raise Rejection(400, "bad_request", "Content-Length is not a number")


def read_body(environ: dict[str, Any], limit: int) -> bytes:
    """The raw body: its announced length (checked against the limit already), or a chunked
    upload counted while it arrives and cut off past the limit."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        body: bytes = stream.read(int(length))
        if len(body) < int(length):
            raise Rejection(400, "bad_request", "the client closed the connection before the body ended")
        return body
    if not environ.get("wsgi.input_terminated"):
        return b""  # neither a length nor a server that ends the stream (PEP 3333): no body
    chunks: list[bytes] = []
    size = 0
    while chunk := stream.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise _too_large(f"the body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def verify_and_parse(
    provider: Provider, body: bytes, headers: Headers, now: float
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


def build_record(name: str, scheme: str, event: ParsedEvent, body: bytes, serializer: Serializer) -> Record:
    """The Kafka record: keyed by the partition key, the Avro envelope as value."""
    envelope = Envelope(
        event_id=event.event_id,
        provider=name,
        event_type=event.event_type,
        workspace_id=event.partition_key if name in _WORKSPACE_PROVIDERS else None,
        partition_key=event.partition_key,
        payload=body,
        received_at=datetime.now(UTC),
        object_id=event.object_id,
        occurred_at=event.occurred_at,
        signature_scheme=scheme,
    )
    try:
        return envelope.partition_key.encode(), serializer.encode(envelope), envelope.headers()
    except SchemaRegistryUnavailable as exc:
        raise Rejection.unavailable(str(exc)) from exc
    except (SchemaError, UnicodeEncodeError) as exc:
        raise Rejection(400, "invalid_json", "the payload's identifiers are not valid Unicode") from exc


def accepted_body(event_id: str, duplicate: bool) -> bytes:
    return json.dumps({"status": "accepted", "event_id": event_id, "duplicate": duplicate}).encode()


def _log_answer(
    provider: str, event_id: str | None, status: int, duplicate: bool, elapsed: float, request_id: str | None
) -> None:
    """One JSON line per webhook. Built directly rather than through `log.info`, which would
    walk the stack to find the caller's file and line: a noticeable cost at this rate."""
    if not log.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "provider": provider,
        "event_id": event_id,
        "status": status,
        "duplicate": duplicate,
        "latency_ms": round(elapsed * 1000, 2),
    }
    if request_id:
        fields["request_id"] = request_id[:_REQUEST_ID_MAX]
    record = log.makeRecord(
        log.name, logging.INFO, __file__, 0, "webhook", (), None, extra={"fields": fields}
    )
    log.handle(record)


def _no_such_provider(name: str) -> Rejection:
    if name in PROVIDERS:
        detail = f"provider {name!r} has no secret configured on this server"
        return Rejection(404, "provider_disabled", detail)
    return Rejection(404, "unknown_provider", f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}")


def _too_large(detail: str) -> Rejection:
    # The unread rest of the body never reaches the app; gunicorn discards it before the
    # connection's next request (a proxy's own body limit stops it earlier still).
    return Rejection(413, "body_too_large", detail)
