"""The ops blueprint: health, readiness, metrics and the API document."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from hookstream.settings import Settings
from producer import metrics, openapi
from producer.dedupe import Deduper
from producer.errors import RETRY_AFTER_S
from producer.publisher import Publisher
from schemas.serializer import Serializer


def build_blueprint(
    settings: Settings, publisher: Publisher, providers: list[str], serializer: Serializer, deduper: Deduper
) -> Blueprint:
    ops = Blueprint("ops", __name__)
    document = openapi.document(providers)

    @ops.get("/healthz")
    def healthz() -> Response:
        """Alive: the process answers. Says nothing about Kafka (that is /readyz)."""
        return jsonify(status="ok")

    @ops.get("/readyz")
    def readyz() -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
        ready, detail = publisher.ready()
        if ready:  # Kafka first; then the schema id, had once per worker (registry framing)
            ready, framing = serializer.ready()
            detail = f"{detail}; {framing}" if ready else framing
        # The dedupe store is reported, never a reason for 503: without it the producer still
        # produces (readiness is Kafka's).
        store = deduper.store_status()
        if ready:
            return jsonify(status="ready", detail=detail, state_store=store), 200
        headers = {"Retry-After": str(RETRY_AFTER_S)}
        return jsonify(error="not_ready", detail=detail, state_store=store), 503, headers

    @ops.get("/metrics")
    def metrics_page() -> Response:
        text, content_type = metrics.render(settings.metrics_multiprocess_dir)
        return Response(text, content_type=content_type)

    @ops.get("/openapi.json")
    def openapi_json() -> Response:
        return jsonify(document)

    return ops
