"""The OpenAPI 3.1 document served at /openapi.json (checked against the app by the tests)."""

from __future__ import annotations

from typing import Any

from producer.providers import PROVIDERS

_ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "A stable code, also the metric's reason label."},
        "detail": {"type": "string", "description": "What was wrong, for a human."},
        "fields": {"type": "array", "items": {"type": "string"}, "description": "422 only: each field."},
    },
}
_ACCEPTED = {
    "type": "object",
    "required": ["status", "event_id", "duplicate"],
    "properties": {
        "status": {"const": "accepted"},
        "event_id": {"type": "string"},
        "duplicate": {"type": "boolean", "description": "Accepted before; not produced again."},
    },
}
_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}


def _json(description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if headers:
        response["headers"] = headers
    return response


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return _json(description, {"$ref": "#/components/schemas/Error"}, headers)


_WEBHOOK_RESPONSES = {
    "200": _json(
        "Kafka holds the event (acks=all), or held it already.", {"$ref": "#/components/schemas/Accepted"}
    ),
    "400": _error("The body is not valid JSON (invalid_json), or Content-Length is malformed."),
    "401": _error(
        "Signature missing (missing_signature), wrong (invalid_signature) or stale (stale_signature)."
    ),
    "404": _error("Unknown provider (unknown_provider), or no secret set for it (provider_disabled)."),
    "405": _error("Only POST is allowed (method_not_allowed)."),
    "413": _error(
        "The body is larger than HOOKSTREAM_MAX_BODY_BYTES, or its record larger than Kafka takes"
        " (body_too_large)."
    ),
    "415": _error("The content type is not JSON (unsupported_media_type)."),
    "422": _error("Required fields are missing; `fields` names them (missing_fields)."),
    "500": _error("An unexpected error (internal_error); nothing was acknowledged."),
    "503": _error("Kafka did not acknowledge in time (kafka_unavailable): retry later.", _RETRY_AFTER),
}
_BODY = {
    "required": True,
    "description": "The provider's JSON payload, signed as that provider signs it.",
    "content": {"application/json": {"schema": {"type": "object"}}},
}


def document(enabled: list[str]) -> dict[str, Any]:
    """The API as this server runs it; `enabled` lists the providers that have a secret."""
    webhook = {
        "summary": "Receive a signed webhook and answer once Kafka holds it",
        "requestBody": _BODY,
        "responses": _WEBHOOK_RESPONSES,
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Hookstream producer",
            "version": "1",
            "description": f"Signed webhooks into Kafka. Enabled providers: {', '.join(enabled) or 'none'}.",
        },
        "paths": {
            "/webhooks/{provider}": {
                "post": {
                    **webhook,
                    "operationId": "receiveWebhook",
                    "parameters": [
                        {
                            "name": "provider",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "enum": list(PROVIDERS)},
                        }
                    ],
                }
            },
            "/webhook/fastio": {"post": {**webhook, "operationId": "receiveFastioWebhook"}},
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "The process is alive",
                    "responses": {"200": _json("Alive.", {"type": "object"})},
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Kafka answers and the topic's metadata is known",
                    "responses": {
                        "200": _json("Ready.", {"type": "object"}),
                        "503": _error("Kafka unreachable or topic unknown (not_ready).", _RETRY_AFTER),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics, merged across gunicorn workers",
                    "responses": {
                        "200": {"description": "Prometheus text format.", "content": {"text/plain": {}}}
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": _json("OpenAPI 3.1.", {"type": "object"})},
                }
            },
        },
        "components": {"schemas": {"Error": _ERROR, "Accepted": _ACCEPTED}},
    }
