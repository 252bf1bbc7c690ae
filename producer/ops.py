"""The Flask app for everything but webhooks: health, readiness, metrics, the API document,
and JSON errors for any other route."""

from __future__ import annotations

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from hookstream.settings import Settings
from producer import metrics, openapi
from producer.errors import RETRY_AFTER_S
from producer.publisher import Publisher


def build_ops_app(settings: Settings, publisher: Publisher, providers: list[str]) -> Flask:
    app = Flask("producer")
    document = openapi.document(providers)

    @app.get("/healthz")
    def healthz() -> Response:
        """Alive: the process answers. Says nothing about Kafka (that is /readyz)."""
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> tuple[Response, int] | tuple[Response, int, dict[str, str]]:
        ready, detail = publisher.ready()
        if ready:
            return jsonify(status="ready", detail=detail), 200
        return jsonify(error="not_ready", detail=detail), 503, {"Retry-After": str(RETRY_AFTER_S)}

    @app.get("/metrics")
    def metrics_page() -> Response:
        text, content_type = metrics.render(settings.metrics_multiprocess_dir)
        return Response(text, content_type=content_type)

    @app.get("/openapi.json")
    def openapi_json() -> Response:
        return jsonify(document)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[Response, int]:
        code = (exc.name or "error").lower().replace(" ", "_")
        response = jsonify(error=code, detail=exc.description)
        if exc.code == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return response, exc.code or 500

    return app
